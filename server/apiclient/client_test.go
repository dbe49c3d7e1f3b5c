package apiclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

func newClient(t *testing.T, url, token string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(url, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClient calls every method against a real server.
func TestClient(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 50})
	ctx := context.Background()
	read := newClient(t, s.URL+"/", apitest.ReadToken)

	healthy, online := false, true
	page, err := read.Devices(ctx, apiclient.DeviceQuery{Channel: "production", Healthy: &healthy, Online: &online, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page.Devices {
		if d.Channel != "production" || d.Health.OK || !d.Online {
			t.Errorf("device %s does not match the filter: %+v", d.ID, d)
		}
	}
	d, err := read.Device(ctx, "dev-00007")
	if err != nil || d.ID != "dev-00007" {
		t.Errorf("Device = %+v, %v", d, err)
	}
	events, err := read.Events(ctx, "dev-00000", apiclient.EventQuery{Limit: 3})
	if err != nil || len(events.Events) != 3 || events.Next == "" {
		t.Errorf("Events = %+v, %v", events, err)
	}
	older, err := read.Events(ctx, "dev-00000", apiclient.EventQuery{Before: events.Next, Limit: 3})
	if err != nil || len(older.Events) != 3 || older.Events[0].Sequence != events.Events[2].Sequence-1 {
		t.Errorf("Events before %s = %+v, %v", events.Next, older, err)
	}
	rs, err := read.Releases(ctx)
	if err != nil || len(rs) != 4 {
		t.Errorf("Releases = %d, %v; want 4", len(rs), err)
	}
	r, err := read.Release(ctx, "v1.4.0")
	if err != nil || r.Version != "1.4.0" || r.Provenance.Commit == "" {
		t.Errorf("Release = %+v, %v", r, err)
	}
	cs, err := read.Channels(ctx)
	if err != nil || len(cs) != 3 {
		t.Errorf("Channels = %+v, %v", cs, err)
	}
	ch, err := read.Channel(ctx, "staging")
	if err != nil || ch.State != "HALTED" {
		t.Errorf("Channel = %+v, %v", ch, err)
	}

	admin := newClient(t, s.URL, apitest.AdminToken)
	for _, step := range []struct {
		do    func(context.Context, string, string) (apiclient.Channel, error)
		state string
	}{{admin.Pause, "PAUSED"}, {admin.Abort, "ABORTED"}, {admin.Resume, "ACTIVE"}} {
		ch, err := step.do(ctx, "canary", "testing")
		if err != nil || ch.State != step.state || !strings.HasSuffix(ch.Reason, "by operator: testing") {
			t.Errorf("channel = %s %q, %v; want %s", ch.State, ch.Reason, err, step.state)
		}
	}
	p, err := newClient(t, s.URL, apitest.ReleaseToken).Promote(ctx, "canary", "1.3.0")
	if err != nil || p.Commit == "" || p.Version != "1.3.0" {
		t.Errorf("Promote = %+v, %v", p, err)
	}
}

// TestClientErrors: a refusal is an *Error that reads as one line naming
// the request, status, code and the server's message.
func TestClientErrors(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	ctx := context.Background()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>Bad Gateway</html>\nmore", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	down := "http://" + testenv.FreeAddr(t)
	tests := []struct {
		name      string
		call      func() error
		wantError string
		want      *apiclient.Error // nil: not an *Error
	}{
		{
			name:      "no token",
			call:      func() error { _, err := newClient(t, s.URL, "").Devices(ctx, apiclient.DeviceQuery{}); return err },
			wantError: "GET " + s.URL + "/api/v1/devices: 401 unauthorized: no bearer token: send Authorization: Bearer TOKEN",
			want:      &apiclient.Error{Method: "GET", URL: s.URL + "/api/v1/devices", Status: 401, Code: "unauthorized", Message: "no bearer token: send Authorization: Bearer TOKEN"},
		},
		{
			name:      "wrong scope",
			call:      func() error { _, err := newClient(t, s.URL, apitest.ReadToken).Pause(ctx, "canary", ""); return err },
			wantError: "POST " + s.URL + "/api/v1/channels/canary/pause: 403 forbidden: token reader lacks scope admin",
			want:      &apiclient.Error{Method: "POST", URL: s.URL + "/api/v1/channels/canary/pause", Status: 403, Code: "forbidden", Message: "token reader lacks scope admin"},
		},
		{
			name:      "not found, escaped",
			call:      func() error { _, err := newClient(t, s.URL, apitest.ReadToken).Device(ctx, "a/b c"); return err },
			wantError: "GET " + s.URL + "/api/v1/devices/a%2Fb%20c: 404 not_found: no device a/b c",
			want:      &apiclient.Error{Method: "GET", URL: s.URL + "/api/v1/devices/a%2Fb%20c", Status: 404, Code: "not_found", Message: "no device a/b c"},
		},
		{
			name:      "not the API",
			call:      func() error { _, err := newClient(t, proxy.URL, "").Releases(ctx); return err },
			wantError: "GET " + proxy.URL + "/api/v1/releases: 502 Bad Gateway: <html>Bad Gateway</html>",
			want:      &apiclient.Error{Method: "GET", URL: proxy.URL + "/api/v1/releases", Status: 502, Message: "<html>Bad Gateway</html>"},
		},
		{
			name:      "server down",
			call:      func() error { _, err := newClient(t, down, "").Releases(ctx); return err },
			wantError: "GET " + down + "/api/v1/releases: dial tcp ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantError) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line starting %q", err, tc.wantError)
			}
			var got *apiclient.Error
			if errors.As(err, &got) != (tc.want != nil) {
				t.Fatalf("err is %T, want *apiclient.Error: %v", err, tc.want != nil)
			}
			if tc.want != nil && !cmp.Equal(got, tc.want) {
				t.Errorf("err = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestNew refuses server URLs it cannot use.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{"http://127.0.0.1:8080", false},
		{"https://fleet.example.com/prefix/", false},
		{"127.0.0.1:8080", true},
		{"ftp://host", true},
		{"http://", true},
		{"", true},
	} {
		_, err := apiclient.New(tc.url, "", nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("New(%q): err = %v, want an error: %v", tc.url, err, tc.wantErr)
		}
	}
}
