package gitsource

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"
)

type poll struct {
	ch   Changes
	next State
}

// TestWatcher checks that a watcher polls at once, on Trigger, and that a
// failed handler gets the same changes again.
func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	w := newWorkspace(t)
	w.seed()
	w.tag("v1.0.0")
	r := w.open(w.daemonURL(), nil)
	// An hour between polls: only the first poll and triggers happen.
	watcher := NewWatcher(r, time.Hour, time.Minute, slog.New(slog.DiscardHandler))

	polls := make(chan poll)
	done := make(chan error)
	go func() {
		// The handler fails once, on the poll that finds v1.1.0.
		failed := false
		done <- watcher.Run(ctx, State{}, func(ctx context.Context, ch Changes, next State) error {
			select {
			case polls <- poll{ch, next}:
			case <-ctx.Done():
			}
			if len(ch.New) > 0 && ch.New[0].Name == "v1.1.0" && !failed {
				failed = true
				return errors.New("database is down")
			}
			return nil
		})
	}()
	next := func() poll {
		t.Helper()
		select {
		case p := <-polls:
			return p
		case <-time.After(30 * time.Second):
			t.Fatal("no poll within 30s")
			return poll{}
		}
	}

	if p := next(); len(p.ch.New) != 1 || p.ch.New[0].Name != "v1.0.0" {
		t.Errorf("first poll: %+v, want v1.0.0 new", p.ch)
	}

	w.tag("v1.1.0")
	watcher.Trigger()
	if p := next(); len(p.ch.New) != 1 || p.ch.New[0].Name != "v1.1.0" {
		t.Errorf("triggered poll: %+v, want v1.1.0 new", p.ch)
	}
	// The handler failed: Run returns its error.
	select {
	case err := <-done:
		if got, want := errString(err), "handle changes of "+r.cfg.URL+": database is down"; got != want {
			t.Errorf("Run = %v, want the handler's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return the handler's error")
	}

	// Run again from the state before: the change comes again, and Run
	// stops with its context.
	go func() {
		done <- watcher.Run(ctx, State{Tags: map[string]SeenTag{"v1.0.0": {Object: w.run(w.work, "rev-parse", "v1.0.0")}}},
			func(ctx context.Context, ch Changes, next State) error {
				select {
				case polls <- poll{ch, next}:
				case <-ctx.Done():
				}
				return nil
			})
	}()
	if p := next(); len(p.ch.New) != 1 || p.ch.New[0].Name != "v1.1.0" || len(p.next.Tags) != 2 {
		t.Errorf("poll after the failure: %+v, want v1.1.0 new again", p)
	}
	// Triggers coalesce and a poll with nothing new calls nobody.
	watcher.Trigger()
	watcher.Trigger()
	watcher.Trigger()
	w.tag("v1.2.0")
	watcher.Trigger()
	if p := next(); len(p.ch.New) != 1 || p.ch.New[0].Name != "v1.2.0" {
		t.Errorf("poll after more triggers: %+v, want v1.2.0 new", p.ch)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestVerifyWebhook(t *testing.T) {
	secret := []byte("hook-secret")
	body := []byte(`{"ref":"refs/tags/v1.4.0"}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	good := hex.EncodeToString(mac.Sum(nil))
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		ok     bool
	}{
		{"github style", secret, body, "sha256=" + good, true},
		{"gitea style", secret, body, good, true},
		{"other body", secret, []byte(`{"ref":"refs/tags/v6.6.6"}`), "sha256=" + good, false},
		{"other secret", []byte("guess"), body, "sha256=" + good, false},
		{"missing", secret, body, "", false},
		{"sha1", secret, body, "sha1=" + good[:40], false},
		{"not hex", secret, body, "sha256=" + good[:62] + "zz", false},
		{"truncated", secret, body, "sha256=" + good[:32], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhook(tt.secret, tt.body, tt.header)
			if tt.ok && err != nil {
				t.Errorf("VerifyWebhook: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrWebhookSignature) {
				t.Errorf("VerifyWebhook = %v, want ErrWebhookSignature", err)
			}
		})
	}
	if err := VerifyWebhook(nil, body, good); err == nil || errors.Is(err, ErrWebhookSignature) {
		t.Errorf("VerifyWebhook without a secret = %v, want a configuration error", err)
	}
}
