package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// Controller applies operators' commands to a channel's rollout. reason says
// why, for people, and who asked. It returns an error wrapping
// store.ErrNotFound for an unknown channel and rollout.ErrTransition for a
// command the rollout's state does not allow.
type Controller interface {
	Pause(ctx context.Context, channel, reason string) error
	Resume(ctx context.Context, channel, reason string) error
	Abort(ctx context.Context, channel, reason string) error
}

// Promoter makes version the release of channel: a commit to fleet.yaml,
// pushed. It returns the commit's id, or an error wrapping
// recipe.ErrUnknownChannel or recipe.ErrUnchanged.
type Promoter interface {
	Promote(ctx context.Context, channel, version string) (commit string, err error)
}

// PromoterFunc is a function that is a Promoter.
type PromoterFunc func(ctx context.Context, channel, version string) (string, error)

// Promote calls f.
func (f PromoterFunc) Promote(ctx context.Context, channel, version string) (string, error) {
	return f(ctx, channel, version)
}

// Trigger makes the Git watcher poll the repository soon. It must not block:
// *gitsource.Watcher is one.
type Trigger interface {
	Trigger()
}

// Reporter returns the rollout engine's latest evaluation of channel, or nil
// if it has none yet.
type Reporter interface {
	Report(ctx context.Context, channel string) (*rollout.Result, error)
}

// Checker checks that something the server needs (the database, the MQTT
// broker) answers.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckFunc is a function that is a Checker.
type CheckFunc func(ctx context.Context) error

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// Config is what a Server serves and with what it acts.
type Config struct {
	// Store is the fleet database. Required.
	Store *store.Store
	// Tokens are the bearer tokens the API accepts; with none, every
	// request to /api/v1 but the webhook and the OpenAPI document is
	// refused.
	Tokens *Tokens
	// WebhookSecret is the secret the Git server signs webhooks with. With
	// none, or no Trigger, the webhook answers 501.
	WebhookSecret []byte
	// Controller, Promoter, Trigger and Reporter may be nil: their routes
	// then answer 501, and channels show no conditions.
	Controller Controller
	Promoter   Promoter
	Trigger    Trigger
	Reporter   Reporter
	// Ready names what /readyz checks: "store", "broker" ...
	Ready map[string]Checker
	// Registry takes the API's metrics and serves /metrics, with whatever
	// else the server registers on it. Nil means a registry of the API's
	// metrics and the Go runtime's and process's collectors.
	Registry *prometheus.Registry
	// Logger takes the access log; nil means none.
	Logger *slog.Logger
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route
	metrics *metrics
}

// Route is one route of the API: what the OpenAPI document describes.
type Route struct {
	Method string
	// Path is a ServeMux path pattern: "/api/v1/devices/{id}".
	Path string
	// Scope is what a bearer token needs for the route; empty for routes
	// that need no token.
	Scope Scope
	// Signed routes (the webhook) are authenticated by an HMAC-SHA256
	// signature of the body.
	Signed bool
}

// Pattern returns the ServeMux pattern of r: "GET /api/v1/devices".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// handler answers one request with the value to send as JSON, or an error.
type handler func(w http.ResponseWriter, r *http.Request) (any, error)

// New returns a Server of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("new api server: no store")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), metrics: m}
	const v1 = "/api/v1"
	for _, r := range []struct {
		Route
		h handler
	}{
		{Route{Method: "GET", Path: "/healthz"}, s.healthz},
		{Route{Method: "GET", Path: "/readyz"}, s.readyz},
		{Route{Method: "GET", Path: v1 + "/openapi.json"}, nil},
		{Route{Method: "GET", Path: "/metrics"}, nil},
		{Route{Method: "GET", Path: v1 + "/devices", Scope: ScopeRead}, s.devices},
		{Route{Method: "GET", Path: v1 + "/devices/{id}", Scope: ScopeRead}, s.device},
		{Route{Method: "GET", Path: v1 + "/devices/{id}/events", Scope: ScopeRead}, s.events},
		{Route{Method: "POST", Path: v1 + "/devices/{id}/clear-penalty", Scope: ScopeAdmin}, s.clearPenalty},
		{Route{Method: "GET", Path: v1 + "/releases", Scope: ScopeRead}, s.releases},
		{Route{Method: "GET", Path: v1 + "/releases/{version}", Scope: ScopeRead}, s.release},
		{Route{Method: "GET", Path: v1 + "/channels", Scope: ScopeRead}, s.channels},
		{Route{Method: "GET", Path: v1 + "/channels/{name}", Scope: ScopeRead}, s.channel},
		{Route{Method: "POST", Path: v1 + "/channels/{name}/pause", Scope: ScopeAdmin}, s.action("pause")},
		{Route{Method: "POST", Path: v1 + "/channels/{name}/resume", Scope: ScopeAdmin}, s.action("resume")},
		{Route{Method: "POST", Path: v1 + "/channels/{name}/abort", Scope: ScopeAdmin}, s.action("abort")},
		{Route{Method: "POST", Path: v1 + "/channels/{name}/promote", Scope: ScopeRelease}, s.promote},
		{Route{Method: "POST", Path: v1 + "/hooks/git", Signed: true}, s.hook},
	} {
		var h http.Handler
		switch r.Path {
		case v1 + "/openapi.json":
			h = http.HandlerFunc(serveOpenAPI)
		case "/metrics":
			h = metricsHandler(reg)
		default:
			h = s.serve(r.Route, r.h)
		}
		s.mux.Handle(r.Pattern(), h)
		s.routes = append(s.routes, r.Route)
	}
	s.addFallbacks()
	return s, nil
}

// Routes returns the routes s serves.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// ServeHTTP answers a request, giving it an id and logging it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(w, r, s.mux)
}

// serve wraps a route's handler: it checks the request's token against the
// route's scope, and writes what the handler returns as JSON.
func (s *Server) serve(route Route, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route.Scope != "" {
			if err := s.authorize(w, r, route.Scope); err != nil {
				writeError(w, r, err)
				return
			}
		}
		v, err := h(w, r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// authorize finds the request's bearer token and checks that it has scope.
// It answers 401 without a known token and 403 without the scope, with the
// WWW-Authenticate header RFC 6750 asks for.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope Scope) error {
	auth := r.Header.Get("Authorization")
	challenge := `Bearer realm="gitfleet"`
	if auth == "" {
		w.Header().Set("WWW-Authenticate", challenge)
		return errorf(http.StatusUnauthorized, apiclient.CodeUnauthorized, "no bearer token: send Authorization: Bearer TOKEN")
	}
	scheme, secret, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_request"`)
		return errorf(http.StatusUnauthorized, apiclient.CodeUnauthorized, "Authorization header is not Bearer TOKEN")
	}
	tok := s.cfg.Tokens.lookup(strings.TrimSpace(secret))
	if tok == nil {
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
		return errorf(http.StatusUnauthorized, apiclient.CodeUnauthorized, "unknown bearer token")
	}
	if info := infoOf(r); info != nil {
		info.token = tok.Name
	}
	if !tok.Allows(scope) {
		w.Header().Set("WWW-Authenticate", challenge+`, error="insufficient_scope", scope="`+string(scope)+`"`)
		return errorf(http.StatusForbidden, apiclient.CodeForbidden, "token %s lacks scope %s", tok.Name, scope)
	}
	return nil
}

// addFallbacks answers, in JSON, what ServeMux would answer in text: 405 for
// a path served with other methods, 404 for any other.
func (s *Server) addFallbacks() {
	allowed := map[string][]string{}
	var paths []string
	for _, r := range s.routes {
		if allowed[r.Path] == nil {
			paths = append(paths, r.Path)
		}
		allowed[r.Path] = append(allowed[r.Path], r.Method)
		if r.Method == http.MethodGet {
			allowed[r.Path] = append(allowed[r.Path], http.MethodHead)
		}
	}
	for _, p := range paths {
		allow := strings.Join(allowed[p], ", ")
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, r, errorf(http.StatusMethodNotAllowed, apiclient.CodeNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, allow))
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusNotFound, apiclient.CodeNotFound, "no route %s %s: see /api/v1/openapi.json", r.Method, r.URL.Path))
	})
}
