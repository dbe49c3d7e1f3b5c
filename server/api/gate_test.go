package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// A Gate answers /healthz and refuses the rest, naming what start-up waits
// for, until it is opened; then the API answers everything.
func TestGate(t *testing.T) {
	var g Gate
	g.Starting("waiting for fleet.yaml")
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := get("/healthz"); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Errorf("/healthz while starting: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/readyz", "/api/v1/devices"} {
		w := get(path)
		var body apiclient.ErrorBody
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != http.StatusServiceUnavailable || body.Code != apiclient.CodeUnavailable ||
			body.Error != "the server is starting: waiting for fleet.yaml" || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s while starting: %d %s (Retry-After %q)", path, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
	g.Open(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, path := range []string{"/healthz", "/readyz"} {
		if w := get(path); w.Code != http.StatusTeapot {
			t.Errorf("%s once open: %d, want the API's answer", path, w.Code)
		}
	}
}
