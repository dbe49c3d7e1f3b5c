package apiclient

import (
	"fmt"
	"net/http"
)

// The codes of ErrorBody: stable names for the decision a caller makes,
// one for each kind of failure. The HTTP status goes with the code.
const (
	CodeBadRequest    = "bad_request"        // 400: a parameter or body the server cannot use
	CodeMalformedHook = "malformed_hook"     // 400: a signed webhook whose body is not a push event
	CodeUnauthorized  = "unauthorized"       // 401: no bearer token, or an unknown one
	CodeBadSignature  = "bad_signature"      // 401: a webhook's HMAC signature is missing, malformed or wrong
	CodeForbidden     = "forbidden"          // 403: the token lacks the route's scope
	CodeNotFound      = "not_found"          // 404: no such device, release, channel or route
	CodeNotAllowed    = "method_not_allowed" // 405: the route takes another method
	CodeConflict      = "conflict"           // 409: not allowed in the resource's state, or nothing to change
	CodeTooLarge      = "too_large"          // 413: a body over the route's limit
	CodeInternal      = "internal"           // 500: the server failed; the message says what
	CodeNotConfigured = "not_configured"     // 501: the server runs without what the route needs
	CodeUnavailable   = "unavailable"        // 503: a dependency (database, broker) is not reachable
)

// ErrorBody is the body of every failed request: one line for people and a
// code for programs.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error is a request the server refused or failed: its status, code and
// message, and the request it answered.
type Error struct {
	Method string
	URL    string
	Status int
	// Code and Message are the server's ErrorBody; for an answer that is
	// not one, Code is empty and Message is what the body began with.
	Code    string
	Message string
}

// Error returns one line: "GET http://host/api/v1/devices: 403 forbidden:
// token ci lacks scope read".
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, code, e.Message)
}
