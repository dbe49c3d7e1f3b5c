package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// TestHook sends the webhook good, badly signed, unsigned and malformed
// ones: only a signed push triggers a poll, and every rejection is a one-line
// JSON error and a logged event.
func TestHook(t *testing.T) {
	const push = `{"ref":"refs/tags/v1.4.0","after":"0d1e2f"}`
	good := "sha256=" + sign(apitest.WebhookSecret, push)
	tests := []struct {
		name        string
		body        string
		header      []string
		wantStatus  int
		wantCode    string
		wantMessage string
		wantTrigger bool
	}{
		{name: "github push", body: push, header: []string{"X-Hub-Signature-256", good, "X-GitHub-Event", "push"}, wantStatus: 200, wantTrigger: true},
		{name: "gitea push", body: push, header: []string{"X-Gitea-Signature", sign(apitest.WebhookSecret, push), "X-Gitea-Event", "push"}, wantStatus: 200, wantTrigger: true},
		{name: "forgejo push", body: push, header: []string{"X-Forgejo-Signature", sign(apitest.WebhookSecret, push)}, wantStatus: 200, wantTrigger: true},
		{name: "ping", body: `{"zen":"Keep it logically awesome."}`, header: []string{"X-Hub-Signature-256", "sha256=" + sign(apitest.WebhookSecret, `{"zen":"Keep it logically awesome."}`), "X-GitHub-Event", "ping"}, wantStatus: 200},
		{name: "missing signature", body: push, wantStatus: 401, wantCode: "bad_signature", wantMessage: "unsigned webhook: no X-Hub-Signature-256 header"},
		{name: "wrong secret", body: push, header: []string{"X-Hub-Signature-256", "sha256=" + sign("guess", push)}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "does not match the body"},
		{name: "body changed", body: strings.Replace(push, "v1.4.0", "v6.6.6", 1), header: []string{"X-Hub-Signature-256", good}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "does not match the body"},
		{name: "no sha256= prefix", body: push, header: []string{"X-Hub-Signature-256", sign(apitest.WebhookSecret, push)}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "X-Hub-Signature-256 is not sha256=<64 hex digits>"},
		{name: "sha1 signature", body: push, header: []string{"X-Hub-Signature-256", "sha1=0123456789abcdef0123456789abcdef01234567"}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "is not sha256="},
		{name: "not hex", body: push, header: []string{"X-Hub-Signature-256", "sha256=" + strings.Repeat("zz", 32)}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "is not sha256="},
		{name: "short", body: push, header: []string{"X-Hub-Signature-256", "sha256=abcd"}, wantStatus: 401, wantCode: "bad_signature", wantMessage: "is not sha256="},
		{name: "signed, not JSON", body: "ref=refs/tags/v1.4.0", header: []string{"X-Hub-Signature-256", "sha256=" + sign(apitest.WebhookSecret, "ref=refs/tags/v1.4.0")}, wantStatus: 400, wantCode: "malformed_hook", wantMessage: "not a JSON object"},
		{name: "signed, no ref", body: `{"action":"opened"}`, header: []string{"X-Hub-Signature-256", "sha256=" + sign(apitest.WebhookSecret, `{"action":"opened"}`)}, wantStatus: 400, wantCode: "malformed_hook", wantMessage: "no ref"},
		{name: "too large", body: strings.Repeat(" ", 5<<20+1), header: []string{"X-Hub-Signature-256", good}, wantStatus: 413, wantCode: "too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.New(t, apitest.Options{Devices: 1})
			// A bearer token does not stand in for the signature.
			a := request(t, s, "POST", "/api/v1/hooks/git", apitest.AdminToken, tc.body, tc.header...)
			if a.status != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tc.wantStatus)
			}
			if got, want := s.Trigger.Count(), map[bool]int{true: 1}[tc.wantTrigger]; got != want {
				t.Errorf("%d triggers, want %d", got, want)
			}
			if tc.wantCode == "" {
				if got := decode[apiclient.HookResult](t, a); got.Triggered != tc.wantTrigger {
					t.Errorf("triggered = %v, want %v", got.Triggered, tc.wantTrigger)
				}
				return
			}
			e := a.errorBody(t)
			if e.Code != tc.wantCode || !strings.Contains(e.Error, tc.wantMessage) {
				t.Errorf("error %+v, want code %s saying %q", e, tc.wantCode, tc.wantMessage)
			}
			if log := s.Log.String(); !strings.Contains(log, "git webhook rejected") || !strings.Contains(log, "code="+tc.wantCode) {
				t.Errorf("no rejection event in the log:\n%s", log)
			}
			metrics := request(t, s, "GET", "/metrics", "", "")
			if want := `gitfleet_webhooks_total{result="` + tc.wantCode + `"} 1`; !strings.Contains(string(metrics.body), want) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}
