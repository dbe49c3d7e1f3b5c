package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// requestInfo is what the layers of a request learn about it for the access
// log: its id, the token that made it and the error it failed with.
type requestInfo struct {
	id    string
	token string
	err   error
}

type infoKey struct{}

// infoOf returns the requestInfo of r, or nil outside Server.ServeHTTP.
func infoOf(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(infoKey{}).(*requestInfo)
	return info
}

// recorder remembers the status and size of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// observe serves r with next, giving it a request id, then counts and logs
// it. Probes and scrapes that succeed are logged at debug level only, so that
// they do not drown the rest.
func (s *Server) observe(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := time.Now()
	info := &requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}
	w.Header().Set("X-Request-Id", info.id)
	rec := &recorder{ResponseWriter: w}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	next.ServeHTTP(rec, r)
	elapsed := time.Since(start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}

	// ServeMux sets the pattern it matched on the request it was given.
	_, route, ok := strings.Cut(r.Pattern, " ")
	if !ok {
		route = r.Pattern // a fallback: "/" or a path of any method
	}
	s.metrics.observe(route, r.Method, rec.status, elapsed)

	level := slog.LevelInfo
	switch {
	case rec.status >= 500:
		level = slog.LevelError
	case rec.status < 300 && (route == "/healthz" || route == "/readyz" || route == "/metrics"):
		level = slog.LevelDebug
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", elapsed),
		slog.String("remote", r.RemoteAddr),
	}
	if info.token != "" {
		attrs = append(attrs, slog.String("token", info.token))
	}
	if info.err != nil {
		attrs = append(attrs, slog.String("error", info.err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// requestID returns the caller's request id if it is sane (at most 64
// letters, digits, dots, dashes and underscores), else a new random one, so
// that a caller cannot forge log lines through it.
func requestID(given string) string {
	if len(given) > 0 && len(given) <= 64 && strings.IndexFunc(given, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_')
	}) < 0 {
		return given
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
