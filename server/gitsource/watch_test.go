package gitsource

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type poll struct {
	ch   Changes
	next State
}

// TestWatcher checks that a watcher polls at once and on Trigger, reports
// tags and moves of the branch, and that a failed handler gets the same
// changes again.
func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	w := newWorkspace(t)
	first := w.seed()
	w.tag("v1.0.0")
	r := w.open(w.daemonURL(), nil)
	var log syncBuffer
	// An hour between polls: only the first poll and triggers happen.
	watcher := NewWatcher(r, time.Hour, time.Minute, slog.New(slog.NewTextHandler(&log, nil)))

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
	newTags := func(p poll) string {
		var names []string
		for _, t := range p.ch.New {
			names = append(names, t.Name)
		}
		return strings.Join(names, " ")
	}

	if p := next(); newTags(p) != "v1.0.0" || p.ch.Head != first {
		t.Errorf("first poll: %+v, want v1.0.0 new and head %s", p.ch, first)
	}

	w.tag("v1.1.0")
	watcher.Trigger()
	if p := next(); newTags(p) != "v1.1.0" || p.ch.Head != "" {
		t.Errorf("triggered poll: %+v, want v1.1.0 new", p.ch)
	}
	// The handler failed: the same change comes again.
	watcher.Trigger()
	if p := next(); newTags(p) != "v1.1.0" || len(p.next.Tags) != 2 {
		t.Errorf("poll after the failure: %+v, want v1.1.0 new again", p)
	}
	if !strings.Contains(log.String(), "database is down") {
		t.Errorf("the handler's error was not logged:\n%s", log.String())
	}

	// Triggers coalesce, and a poll with nothing new calls nobody: the next
	// call is for the promotion, a move of the branch.
	watcher.Trigger()
	watcher.Trigger()
	watcher.Trigger()
	p, err := r.Promote(ctx, "production", "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	watcher.Trigger()
	if got := next(); got.ch.Head != p.Commit || len(got.ch.New) > 0 {
		t.Errorf("poll after a promotion: %+v, want head %s", got.ch, p.Commit)
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
