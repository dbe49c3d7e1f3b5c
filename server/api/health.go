package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// readyTimeout bounds /readyz: a probe that waits longer than a load
// balancer does tells it nothing.
const readyTimeout = 2 * time.Second

// healthz answers GET /healthz: the process is up and serving (a Gate
// answers the same while the server starts).
func (s *Server) healthz(http.ResponseWriter, *http.Request) (any, error) {
	return apiclient.Status{Status: "ok"}, nil
}

// readyz answers GET /readyz: 200 when every Checker answered, 503 naming
// those that did not.
func (s *Server) readyz(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	out := apiclient.Status{Status: "ok", Checks: map[string]string{}}
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Ready)) {
		if err := s.cfg.Ready[name].Check(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		out.Checks[name] = "ok"
	}
	if failed != nil {
		return nil, errorf(http.StatusServiceUnavailable, apiclient.CodeUnavailable, "not ready: %s", strings.Join(failed, "; "))
	}
	return out, nil
}

// A Gate is the handler a server listens with from its first moment, before
// the API exists. While the server starts — which can take long:
// gitfleet-server without `fleet` in server.yaml waits for fleet.yaml's name
// from the firmware repository — it answers GET /healthz as the API does,
// since the process is alive and a liveness probe must not restart it in a
// loop, and every other request, /readyz included, with 503 and what
// start-up waits for (Starting). Once opened it hands every request to the
// API. The zero Gate is ready to use and safe for concurrent use.
type Gate struct {
	phase atomic.Pointer[string]
	api   atomic.Pointer[http.Handler]
}

// Starting says what start-up does now, for the 503 answers.
func (g *Gate) Starting(what string) { g.phase.Store(&what) }

// Open hands every request from now on to h.
func (g *Gate) Open(h http.Handler) { g.api.Store(&h) }

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.api.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		writeJSON(w, http.StatusOK, apiclient.Status{Status: "ok"})
		return
	}
	msg := "the server is starting"
	if p := g.phase.Load(); p != nil {
		msg += ": " + *p
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, r, errorf(http.StatusServiceUnavailable, apiclient.CodeUnavailable, "%s", msg))
}
