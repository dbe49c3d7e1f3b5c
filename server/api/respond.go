package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// httpError is a failure with the status and code it answers with.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, apiclient.CodeBadRequest, format, args...)
}

func notConfigured(what string) *httpError {
	return errorf(http.StatusNotImplemented, apiclient.CodeNotConfigured, "this server runs without %s", what)
}

// classify returns the status and code err answers with. The sentinel
// errors of the parts the API calls decide them; anything else is the
// server's failure.
func classify(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.code
	case errors.Is(err, store.ErrNotFound), errors.Is(err, recipe.ErrUnknownChannel):
		return http.StatusNotFound, apiclient.CodeNotFound
	case errors.Is(err, rollout.ErrTransition), errors.Is(err, recipe.ErrUnchanged):
		return http.StatusConflict, apiclient.CodeConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, apiclient.CodeUnavailable
	}
	return http.StatusInternalServerError, apiclient.CodeInternal
}

// writeError answers with err as an ErrorBody, on one line, and leaves err
// for the access log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if info := infoOf(r); info != nil {
		info.err = err
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	writeJSON(w, status, apiclient.ErrorBody{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a bug gets here: every answer is a plain struct.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiclient.ErrorBody{Error: "encode answer: " + err.Error(), Code: apiclient.CodeInternal})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// maxBody bounds the body of an action or promotion.
const maxBody = 64 << 10

// readJSON decodes r's body, which may be empty, into v, refusing unknown
// fields and anything after the value.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, apiclient.CodeTooLarge, "body over %d bytes", maxBody)
	}
	if err != nil {
		return badRequest("body: %v", err)
	}
	if dec.More() {
		return badRequest("body: more than one JSON value")
	}
	return nil
}

// notFound returns err, the error of looking up the kind named name, as a
// one-line 404 if it is store.ErrNotFound: "no device dev-1".
func notFound(err error, kind, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, apiclient.CodeNotFound, "no %s %s", kind, name)
	}
	return err
}
