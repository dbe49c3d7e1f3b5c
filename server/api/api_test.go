package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/server/api"
	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

// answer is what the server answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes a failure's body, failing the test if it is not an
// ErrorBody on one line.
func (a answer) errorBody(t *testing.T) apiclient.ErrorBody {
	t.Helper()
	var e apiclient.ErrorBody
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error == "" || e.Code == "" {
		t.Fatalf("answer %d %q is not an error body (%v)", a.status, a.body, err)
	}
	if strings.Contains(e.Error, "\n") {
		t.Errorf("error %q is more than one line", e.Error)
	}
	return e
}

// request sends a request to s with token (none if empty) and returns the
// answer.
func request(t testing.TB, s *apitest.Server, method, path, token, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, a.body, err)
	}
	return v
}

// TestRoutes calls every route with a token that may, and the failures each
// route has.
func TestRoutes(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	const read, rel, admin = apitest.ReadToken, apitest.ReleaseToken, apitest.AdminToken
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		wantStatus int
		// wantCode is the error code of a failure; check looks at a
		// success.
		wantCode string
		check    func(t *testing.T, a answer)
	}{
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200, check: func(t *testing.T, a answer) {
			if got := decode[apiclient.Status](t, a); got.Status != "ok" {
				t.Errorf("status = %q, want ok", got.Status)
			}
		}},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Status](t, a)
			if want := (apiclient.Status{Status: "ok", Checks: map[string]string{"store": "ok"}}); !cmp.Equal(got, want) {
				t.Errorf("readyz = %+v, want %+v", got, want)
			}
		}},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200, check: func(t *testing.T, a answer) {
			if !bytes.Contains(a.body, []byte("gitfleet_http_requests_total")) {
				t.Errorf("metrics lack gitfleet_http_requests_total:\n%s", a.body)
			}
		}},
		{name: "openapi", method: "GET", path: "/api/v1/openapi.json", wantStatus: 200, check: func(t *testing.T, a answer) {
			if got := decode[map[string]any](t, a)["openapi"]; got != "3.0.3" {
				t.Errorf("openapi = %v, want 3.0.3", got)
			}
		}},
		{name: "devices", method: "GET", path: "/api/v1/devices", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			p := decode[apiclient.DevicePage](t, a)
			if len(p.Devices) != apiclient.DefaultLimit || p.Next == "" {
				t.Errorf("first page: %d devices, next %q; want %d and a next", len(p.Devices), p.Next, apiclient.DefaultLimit)
			}
		}},
		{name: "devices bad filter", method: "GET", path: "/api/v1/devices?online=maybe", token: read, wantStatus: 400, wantCode: "bad_request"},
		{name: "device", method: "GET", path: "/api/v1/devices/dev-00003", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Device](t, a)
			if got.ID != "dev-00003" || got.Commit != s.Devices[3].Commit || got.Health.Checks == nil {
				t.Errorf("device = %+v", got)
			}
		}},
		{name: "device unknown", method: "GET", path: "/api/v1/devices/dev-99999", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "events", method: "GET", path: "/api/v1/devices/dev-00000/events?limit=5", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			p := decode[apiclient.EventPage](t, a)
			if len(p.Events) != 5 || p.Events[0].Sequence != 30 || p.Next == "" {
				t.Errorf("events page = %+v, want 5 from sequence 30 and a next", p)
			}
		}},
		{name: "events of a device without", method: "GET", path: "/api/v1/devices/dev-00001/events", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			if p := decode[apiclient.EventPage](t, a); p.Events == nil || len(p.Events) != 0 || p.Next != "" {
				t.Errorf("events page = %+v, want an empty list", p)
			}
		}},
		{name: "events unknown device", method: "GET", path: "/api/v1/devices/nope/events", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "events bad cursor", method: "GET", path: "/api/v1/devices/dev-00000/events?before=***", token: read, wantStatus: 400, wantCode: "bad_request"},
		{name: "releases", method: "GET", path: "/api/v1/releases", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			var tags []string
			for _, r := range decode[apiclient.ReleaseList](t, a).Releases {
				tags = append(tags, r.Provenance.Tag+" "+r.Build.State)
			}
			slices.Sort(tags)
			want := []string{"v1.3.0 succeeded", "v1.4.0 succeeded", "v1.4.1 failed", "v1.5.0-rc.1 building"}
			if !cmp.Equal(tags, want) {
				t.Errorf("releases = %q, want %q", tags, want)
			}
		}},
		{name: "release by version", method: "GET", path: "/api/v1/releases/1.4.0", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Release](t, a)
			if got.Provenance.Tag != "v1.4.0" || got.Provenance.Signer == "" || got.Provenance.TagObject == "" ||
				got.Bundle.Digest == "" || got.Build.Finished == nil || got.Objects["bundle"] == "" {
				t.Errorf("release = %+v, want provenance, bundle and build", got)
			}
		}},
		{name: "release by tag, failed", method: "GET", path: "/api/v1/releases/v1.4.1", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			if got := decode[apiclient.Release](t, a); got.Build.State != "failed" || got.Build.Error == "" {
				t.Errorf("release = %+v, want a failed build with its error", got)
			}
		}},
		{name: "release unknown", method: "GET", path: "/api/v1/releases/9.9.9", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "channels", method: "GET", path: "/api/v1/channels", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			var names []string
			for _, c := range decode[apiclient.ChannelList](t, a).Channels {
				names = append(names, c.Name+" "+c.State)
			}
			if want := []string{"canary ACTIVE", "production ACTIVE", "staging HALTED"}; !cmp.Equal(names, want) {
				t.Errorf("channels = %q, want %q", names, want)
			}
		}},
		{name: "channel", method: "GET", path: "/api/v1/channels/production", token: read, wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Channel](t, a)
			if got.Release != "1.4.0" || got.Wave != 1 {
				t.Errorf("channel = %+v", got)
			}
			var types []string
			for _, c := range got.Conditions {
				types = append(types, c.Type)
			}
			if want := []string{"Ready", "Progressing", "Degraded", "Halted"}; !cmp.Equal(types, want) {
				t.Errorf("conditions %q, want %q", types, want)
			}
			targeted := 0
			for _, d := range s.Devices {
				if d.Channel == "production" {
					targeted++
				}
			}
			if got.Counts == nil || got.Counts.Targeted != targeted {
				t.Errorf("counts = %+v, want %d targeted", got.Counts, targeted)
			}
		}},
		{name: "channel unknown", method: "GET", path: "/api/v1/channels/nowhere", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "pause", method: "POST", path: "/api/v1/channels/production/pause", token: admin, body: `{"reason":"boot loops on imx8"}`, wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Channel](t, a)
			if got.State != "PAUSED" || got.Reason != "paused by operator: boot loops on imx8" {
				t.Errorf("paused channel = %s %q", got.State, got.Reason)
			}
		}},
		{name: "pause again", method: "POST", path: "/api/v1/channels/production/pause", token: admin, wantStatus: 409, wantCode: "conflict"},
		{name: "resume", method: "POST", path: "/api/v1/channels/production/resume", token: admin, wantStatus: 200, check: func(t *testing.T, a answer) {
			if got := decode[apiclient.Channel](t, a); got.State != "ACTIVE" || got.Reason != "resumed by operator" {
				t.Errorf("resumed channel = %s %q", got.State, got.Reason)
			}
		}},
		{name: "abort", method: "POST", path: "/api/v1/channels/staging/abort", token: admin, body: `{}`, wantStatus: 200, check: func(t *testing.T, a answer) {
			if got := decode[apiclient.Channel](t, a); got.State != "ABORTED" {
				t.Errorf("aborted channel = %s", got.State)
			}
		}},
		{name: "abort unknown channel", method: "POST", path: "/api/v1/channels/nowhere/abort", token: admin, wantStatus: 404, wantCode: "not_found"},
		{name: "pause bad body", method: "POST", path: "/api/v1/channels/canary/pause", token: admin, body: `{"why":"x"}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "pause two-line reason", method: "POST", path: "/api/v1/channels/canary/pause", token: admin, body: `{"reason":"a\nb"}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "pause huge body", method: "POST", path: "/api/v1/channels/canary/pause", token: admin, body: `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`, wantStatus: 413, wantCode: "too_large"},
		{name: "promote", method: "POST", path: "/api/v1/channels/staging/promote", token: rel, body: `{"version":"v1.3.0"}`, wantStatus: 200, check: func(t *testing.T, a answer) {
			got := decode[apiclient.Promotion](t, a)
			if got.Channel != "staging" || got.Version != "1.3.0" || len(got.Commit) != 40 {
				t.Errorf("promotion = %+v", got)
			}
			if calls, want := s.Promoter.Calls(), []string{"staging 1.3.0"}; !cmp.Equal(calls, want) {
				t.Errorf("promoter calls = %q, want %q", calls, want)
			}
		}},
		{name: "promote unbuilt", method: "POST", path: "/api/v1/channels/staging/promote", token: rel, body: `{"version":"1.5.0-rc.1"}`, wantStatus: 404, wantCode: "not_found"},
		{name: "promote unchanged", method: "POST", path: "/api/v1/channels/production/promote", token: rel, body: `{"version":"1.4.0"}`, wantStatus: 409, wantCode: "conflict"},
		{name: "promote unknown channel", method: "POST", path: "/api/v1/channels/nowhere/promote", token: rel, body: `{"version":"1.4.0"}`, wantStatus: 404, wantCode: "not_found"},
		{name: "promote no version", method: "POST", path: "/api/v1/channels/staging/promote", token: rel, body: `{}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "promote not JSON", method: "POST", path: "/api/v1/channels/staging/promote", token: rel, body: `version=1.4.0`, wantStatus: 400, wantCode: "bad_request"},
		{name: "hook unsigned", method: "POST", path: "/api/v1/hooks/git", body: `{"ref":"refs/tags/v1.4.0"}`, wantStatus: 401, wantCode: "bad_signature"},
		{name: "no route", method: "GET", path: "/api/v1/nothing", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "trailing slash", method: "GET", path: "/api/v1/devices/", token: read, wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", method: "DELETE", path: "/api/v1/devices", token: read, wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "GET of an action", method: "GET", path: "/api/v1/channels/production/pause", token: admin, wantStatus: 405, wantCode: "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := request(t, s, tc.method, tc.path, tc.token, tc.body)
			if a.status != tc.wantStatus {
				t.Fatalf("%s %s: status %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.wantStatus)
			}
			if got := a.header.Get("Content-Type"); tc.path != "/metrics" && got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if tc.wantCode != "" {
				if got := a.errorBody(t).Code; got != tc.wantCode {
					t.Errorf("code = %q, want %q", got, tc.wantCode)
				}
				return
			}
			tc.check(t, a)
		})
	}
}

// TestAuth calls every route that takes a token without one, with a
// malformed header, an unknown token and a token without the route's scope,
// and with one that has it.
func TestAuth(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 10})
	// withScope are tokens that have each scope, withoutScope tokens that
	// lack it.
	withScope := map[api.Scope]string{api.ScopeRead: apitest.ReadToken, api.ScopeRelease: apitest.ReleaseToken, api.ScopeAdmin: apitest.AdminToken}
	withoutScope := map[api.Scope]string{api.ScopeRead: apitest.PromoteOnlyToken, api.ScopeRelease: apitest.AdminToken, api.ScopeAdmin: apitest.ReleaseToken}
	for _, r := range s.API.Routes() {
		if r.Scope == "" {
			continue
		}
		path := strings.NewReplacer("{id}", "dev-00001", "{version}", "1.4.0", "{name}", "canary").Replace(r.Path)
		tests := []struct {
			name     string
			header   []string
			wantCode string
		}{
			{"no token", nil, "unauthorized"},
			{"not bearer", []string{"Authorization", "Basic dXNlcjpwYXNz"}, "unauthorized"},
			{"empty bearer", []string{"Authorization", "Bearer "}, "unauthorized"},
			{"unknown token", []string{"Authorization", "Bearer guess"}, "unauthorized"},
			{"lacks scope", []string{"Authorization", "Bearer " + withoutScope[r.Scope]}, "forbidden"},
			{"has scope", []string{"Authorization", "bearer " + withScope[r.Scope]}, ""},
		}
		for _, tc := range tests {
			t.Run(r.Pattern()+"/"+tc.name, func(t *testing.T) {
				body := map[string]string{
					"/promote":       `{"version":"1.3.0"}`,
					"/clear-penalty": `{"release":"1.4.0"}`,
				}[r.Path[strings.LastIndex(r.Path, "/"):]]
				a := request(t, s, r.Method, path, "", body, tc.header...)
				if tc.wantCode == "" {
					if a.status != 200 {
						t.Errorf("status %d %s, want 200", a.status, a.body)
					}
					return
				}
				wantStatus := map[string]int{"unauthorized": 401, "forbidden": 403}[tc.wantCode]
				if a.status != wantStatus {
					t.Fatalf("status %d %s, want %d", a.status, a.body, wantStatus)
				}
				if got := a.errorBody(t).Code; got != tc.wantCode {
					t.Errorf("code = %q, want %q", got, tc.wantCode)
				}
				if got := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="gitfleet"`) {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
			})
		}
	}
	if a := request(t, s, "GET", "/api/v1/devices", apitest.PromoteOnlyToken, ""); !strings.Contains(a.errorBody(t).Error, "token promote-only lacks scope read") {
		t.Errorf("403 message %q does not name the token and the scope", a.body)
	}
}

// TestNotConfigured: a server without a controller, promoter, trigger or
// webhook secret answers their routes 501, and refuses every token when it
// has none.
func TestNotConfigured(t *testing.T) {
	full := apitest.New(t, apitest.Options{Devices: 1})
	s, err := api.New(api.Config{Store: full.Store, Tokens: api.NewTokens(api.NewToken("ops", "t", api.ScopeRead, api.ScopeRelease, api.ScopeAdmin))})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := api.New(api.Config{Store: full.Store})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		h            http.Handler
		method, path string
		wantStatus   int
		wantCode     string
	}{
		{"pause", s, "POST", "/api/v1/channels/canary/pause", 501, "not_configured"},
		{"promote", s, "POST", "/api/v1/channels/canary/promote", 501, "not_configured"},
		{"hook", s, "POST", "/api/v1/hooks/git", 501, "not_configured"},
		{"no tokens", bare, "GET", "/api/v1/devices", 401, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"version":"1.4.0"}`))
			req.Header.Set("Authorization", "Bearer t")
			tc.h.ServeHTTP(w, req)
			a := answer{w.Code, w.Header(), w.Body.Bytes()}
			if a.status != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tc.wantStatus)
			}
			if got := a.errorBody(t).Code; got != tc.wantCode {
				t.Errorf("code = %q, want %q", got, tc.wantCode)
			}
		})
	}
	w := httptest.NewRecorder()
	bare.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(w.Body.String(), "go_goroutines") || !strings.Contains(w.Body.String(), "gitfleet_http_requests_total") {
		t.Errorf("metrics of a server without a registry lack the Go runtime's or the API's:\n%s", w.Body.String())
	}
	if _, err := api.New(api.Config{}); err == nil {
		t.Error("api.New without a store: no error")
	}
}
