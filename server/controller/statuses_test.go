package controller

import (
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/server/rollout"
)

// TestStatusesDoNotWaitForAStep: a step holds the controller's lock while
// it reads every device (seconds at 100k devices); the API's Statuses must
// answer meanwhile, from the last step's results.
func TestStatusesDoNotWaitForAStep(t *testing.T) {
	c := &Controller{}
	c.remember("production", &rollout.Result{})
	c.mu.Lock() // a step in progress
	defer c.mu.Unlock()
	done := make(chan []Status, 1)
	go func() { done <- c.Statuses() }()
	select {
	case st := <-done:
		if len(st) != 1 || st[0].Channel != "production" {
			t.Errorf("Statuses = %+v, want the production channel", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Statuses waited for the step's lock")
	}
}
