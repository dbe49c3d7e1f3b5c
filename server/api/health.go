package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// readyTimeout bounds /readyz: a probe that waits longer than a load
// balancer does tells it nothing.
const readyTimeout = 2 * time.Second

// healthz answers GET /healthz: the process is up and serving.
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
