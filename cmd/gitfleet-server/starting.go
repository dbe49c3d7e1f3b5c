package main

import (
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// frontDoor is the HTTP handler from the moment the server listens. While
// the server starts — which can take long: without `fleet` in server.yaml
// it waits for fleet.yaml's name from the firmware repository — it answers
// GET /healthz with ok, since the process is alive and a liveness probe
// must not restart it in a loop while Git is unreachable, and every other
// request, /readyz included, with 503 and what start-up waits for. Once the
// server runs it hands every request to the API.
type frontDoor struct {
	phase atomic.Pointer[string]
	api   atomic.Pointer[http.Handler]
}

// starting says what start-up does now, for the 503 answers.
func (f *frontDoor) starting(what string) { f.phase.Store(&what) }

// open hands every request from now on to h.
func (f *frontDoor) open(h http.Handler) { f.api.Store(&h) }

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := f.api.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		answer(w, http.StatusOK, apiclient.Status{Status: "ok"})
		return
	}
	msg := "the server is starting"
	if p := f.phase.Load(); p != nil {
		msg += ": " + *p
	}
	w.Header().Set("Retry-After", "5")
	answer(w, http.StatusServiceUnavailable, apiclient.ErrorBody{Error: msg, Code: apiclient.CodeUnavailable})
}

func answer(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // plain structs
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
