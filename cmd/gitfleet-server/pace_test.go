package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestPaceRestsBetweenSteps: changes arriving every few milliseconds do
// not run a step each; a step of 100 ms is followed by at least 1 s
// without change-driven steps, and the changes that came meanwhile are
// taken by one step after it.
func TestPaceRestsBetweenSteps(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan struct{}, 1)
	var steps atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		pace(ctx, changed, time.Hour, func(context.Context) {
			steps.Add(1)
			time.Sleep(100 * time.Millisecond)
		})
	}()
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	end := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(end) {
		notify()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	// At 0 s, after the rest at about 1.1 s, and at about 2.2 s: three;
	// without the rest about 25.
	if n := steps.Load(); n < 2 || n > 4 {
		t.Fatalf("%d steps in 2.5 s of changes every 5 ms, with steps of 100 ms; want 2 to 4", n)
	}

	// A change after the rest is taken at once.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	stepped := make(chan time.Time, 4)
	go pace(ctx, changed, time.Hour, func(context.Context) { stepped <- time.Now() })
	notify()
	<-stepped
	time.Sleep(1100 * time.Millisecond)
	sent := time.Now()
	notify()
	select {
	case at := <-stepped:
		if d := at.Sub(sent); d > 700*time.Millisecond {
			t.Errorf("a change after the rest was stepped %v later", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a change after the rest was never stepped")
	}
}
