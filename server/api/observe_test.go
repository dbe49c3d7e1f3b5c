package api_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitfleet/gitfleet/server/api"
	"github.com/gitfleet/gitfleet/server/api/apitest"
)

// TestMetrics: requests are counted and timed by route pattern, not by
// path, and methods nobody serves count as OTHER.
func TestMetrics(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 3})
	ingested := prometheus.NewCounter(prometheus.CounterOpts{Name: "gitfleet_ingest_statuses_total", Help: "test"})
	s.Registry.MustRegister(ingested)
	ingested.Add(7)
	for _, id := range []string{"dev-00000", "dev-00001", "dev-00002"} {
		request(t, s, "GET", "/api/v1/devices/"+id, apitest.ReadToken, "")
	}
	request(t, s, "GET", "/api/v1/devices", "", "")
	request(t, s, "BREW", "/api/v1/devices", "", "")
	request(t, s, "GET", "/nothing/here", "", "")
	a := request(t, s, "GET", "/metrics", "", "")
	for _, want := range []string{
		`gitfleet_http_requests_total{code="200",method="GET",route="/api/v1/devices/{id}"} 3`,
		`gitfleet_http_requests_total{code="401",method="GET",route="/api/v1/devices"} 1`,
		`gitfleet_http_requests_total{code="405",method="OTHER",route="/api/v1/devices"} 1`,
		`gitfleet_http_requests_total{code="404",method="GET",route="/"} 1`,
		`gitfleet_http_request_duration_seconds_count{method="GET",route="/api/v1/devices/{id}"} 3`,
		`gitfleet_ingest_statuses_total 7`, // what else the server registers is served too
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRequestID: every answer carries a request id, the caller's if it is
// sane, and the access log records it with the route, status and token.
func TestRequestID(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	tests := []struct {
		name  string
		given string
		want  string // empty: a new id
	}{
		{"none", "", ""},
		{"sane", "req-42.a_b", "req-42.a_b"},
		{"forged log line", "x\" level=ERROR msg=owned", ""},
		{"too long", strings.Repeat("a", 65), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := request(t, s, "GET", "/api/v1/devices/dev-00000", apitest.ReadToken, "", "X-Request-Id", tc.given)
			got := a.header.Get("X-Request-Id")
			switch {
			case tc.want != "" && got != tc.want:
				t.Errorf("X-Request-Id = %q, want %q", got, tc.want)
			case tc.want == "" && !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got):
				t.Errorf("X-Request-Id = %q, want 16 hex digits", got)
			}
			line := "request_id=" + got + " method=GET path=/api/v1/devices/dev-00000 route=/api/v1/devices/{id} status=200"
			if log := s.Log.String(); !strings.Contains(log, line) || !strings.Contains(log, "token=reader") {
				t.Errorf("access log lacks %q with token=reader:\n%s", line, log)
			}
		})
	}
	a := request(t, s, "GET", "/api/v1/devices/nope", apitest.ReadToken, "")
	if want := "status=404"; !strings.Contains(s.Log.String(), "request_id="+a.header.Get("X-Request-Id")) || !strings.Contains(s.Log.String(), want) {
		t.Errorf("access log lacks the failed request:\n%s", s.Log.String())
	}
	if !strings.Contains(s.Log.String(), `error="no device nope"`) {
		t.Errorf("access log lacks the failure's error:\n%s", s.Log.String())
	}
}

// TestReadyz: /readyz fails naming what did not answer, and passes when all
// did; /healthz passes regardless.
func TestReadyz(t *testing.T) {
	broker := errors.New("dial tcp 127.0.0.1:1883: connection refused")
	s := apitest.New(t, apitest.Options{Devices: 1, Ready: map[string]api.Checker{
		"store":  api.CheckFunc(func(context.Context) error { return nil }),
		"broker": api.CheckFunc(func(context.Context) error { return broker }),
	}})
	a := request(t, s, "GET", "/readyz", "", "")
	if a.status != 503 {
		t.Fatalf("readyz: status %d %s, want 503", a.status, a.body)
	}
	if e := a.errorBody(t); e.Code != "unavailable" || e.Error != "not ready: broker: "+broker.Error() {
		t.Errorf("readyz error = %+v", e)
	}
	if a := request(t, s, "GET", "/healthz", "", ""); a.status != 200 {
		t.Errorf("healthz: status %d, want 200", a.status)
	}
}
