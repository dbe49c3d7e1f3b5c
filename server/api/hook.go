package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// maxHookBody bounds a webhook's body. Push events of many commits run to
// a few hundred kilobytes.
const maxHookBody = 5 << 20

// signatureHeaders are the headers Git servers sign webhooks in, and whether
// the hex digest in each has a "sha256=" prefix: GitHub, Forgejo and GitLab-
// style relays send X-Hub-Signature-256, Gitea and Forgejo also their own.
var signatureHeaders = []struct {
	name   string
	prefix string
}{
	{"X-Hub-Signature-256", "sha256="},
	{"X-Gitea-Signature", ""},
	{"X-Forgejo-Signature", ""},
}

// eventHeaders name the kind of a webhook: "push", "ping" ...
var eventHeaders = []string{"X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event"}

// hook answers POST /api/v1/hooks/git: a Git server's webhook, signed with
// HMAC-SHA256 over the body with the shared secret. A signed push event
// makes the Git watcher poll at once; a ping is answered without. Every
// rejected webhook is counted and logged as an event of its own, since it
// is either a misconfigured Git server or someone else knocking.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) (any, error) {
	if len(s.cfg.WebhookSecret) == 0 || s.cfg.Trigger == nil {
		return nil, s.rejectHook(r, notConfigured("a webhook secret and a Git watcher"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, s.rejectHook(r, errorf(http.StatusRequestEntityTooLarge, apiclient.CodeTooLarge, "webhook body over %d bytes", maxHookBody))
		}
		return nil, s.rejectHook(r, badRequest("read webhook body: %v", err))
	}
	if err := verifySignature(s.cfg.WebhookSecret, body, r.Header); err != nil {
		return nil, s.rejectHook(r, err)
	}
	event := ""
	for _, h := range eventHeaders {
		if event = r.Header.Get(h); event != "" {
			break
		}
	}
	if event == "ping" {
		s.metrics.hooks.WithLabelValues("ping").Inc()
		return apiclient.HookResult{Triggered: false}, nil
	}
	var push struct {
		Ref *string `json:"ref"`
	}
	if err := json.Unmarshal(body, &push); err != nil {
		return nil, s.rejectHook(r, errorf(http.StatusBadRequest, apiclient.CodeMalformedHook, "webhook body is not a JSON object: %v", err))
	}
	if push.Ref == nil {
		return nil, s.rejectHook(r, errorf(http.StatusBadRequest, apiclient.CodeMalformedHook, "webhook body has no ref: send push events"))
	}
	s.cfg.Trigger.Trigger()
	s.metrics.hooks.WithLabelValues("triggered").Inc()
	return apiclient.HookResult{Triggered: true}, nil
}

// rejectHook counts and logs a rejected webhook, and returns err.
func (s *Server) rejectHook(r *http.Request, err *httpError) error {
	s.metrics.hooks.WithLabelValues(err.code).Inc()
	id := ""
	if info := infoOf(r); info != nil {
		id = info.id
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "git webhook rejected",
		slog.String("request_id", id), slog.String("remote", r.RemoteAddr),
		slog.String("code", err.code), slog.String("reason", err.msg))
	return err
}

// verifySignature checks the HMAC-SHA256 signature of body in the first of
// signatureHeaders that h has. It says which header is missing, malformed or
// wrong; the comparison takes the same time whatever the signature, so it
// leaks nothing about the expected one.
func verifySignature(secret, body []byte, h http.Header) *httpError {
	for _, sh := range signatureHeaders {
		v := h.Get(sh.name)
		if v == "" {
			continue
		}
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), sh.prefix)
		sig, err := hex.DecodeString(hexSig)
		if !ok || err != nil || len(sig) != sha256.Size {
			return errorf(http.StatusUnauthorized, apiclient.CodeBadSignature, "%s is not %s<64 hex digits>", sh.name, sh.prefix)
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if !hmac.Equal(sig, mac.Sum(nil)) {
			return errorf(http.StatusUnauthorized, apiclient.CodeBadSignature, "%s does not match the body: check the webhook secret", sh.name)
		}
		return nil
	}
	return errorf(http.StatusUnauthorized, apiclient.CodeBadSignature, "unsigned webhook: no %s header: set the webhook secret on the Git server", signatureHeaders[0].name)
}
