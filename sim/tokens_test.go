package sim

import (
	"context"
	"testing"
	"time"
)

// A device resuming after its reboot gets the next free token before
// devices that asked earlier to start an install.
func TestTokensServeResumesFirst(t *testing.T) {
	ctx := t.Context()
	tk := newTokens(1)
	if !tk.acquire(ctx, false) {
		t.Fatal("the free token was not handed out")
	}
	order := make(chan string, 3)
	for i, w := range []struct {
		name   string
		resume bool
	}{{"install 1", false}, {"install 2", false}, {"resume", true}} {
		go func() {
			if tk.acquire(ctx, w.resume) {
				order <- w.name
			}
		}()
		waitQueued(t, tk, i+1)
	}

	for _, want := range []string{"resume", "install 1", "install 2"} {
		tk.release()
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("token went to %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no waiter got the released token (want %s)", want)
		}
	}
}

// A waiter whose context ends leaves the queue, and a token handed to it as
// it gave up is passed on rather than lost.
func TestTokensCancelledWaiterLosesNoToken(t *testing.T) {
	tk := newTokens(1)
	if !tk.acquire(t.Context(), false) {
		t.Fatal("the free token was not handed out")
	}
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan bool, 1)
	go func() { got <- tk.acquire(ctx, true) }()
	waitQueued(t, tk, 1)
	cancel()
	if <-got {
		t.Fatal("acquire reported a token after its context ended")
	}
	tk.release()
	if !tk.acquire(t.Context(), false) {
		t.Fatal("the released token was lost")
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.free != 0 || len(tk.resumes)+len(tk.installs) != 0 {
		t.Fatalf("free %d, waiting %d resumes and %d installs; want none", tk.free, len(tk.resumes), len(tk.installs))
	}
}

// waitQueued waits until n acquires wait in the queues.
func waitQueued(t *testing.T, tk *tokens, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tk.mu.Lock()
		queued := len(tk.resumes) + len(tk.installs)
		tk.mu.Unlock()
		if queued == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d acquires never waited together", n)
}
