package sim

import (
	"context"
	"sync"
)

// tokens bounds the engine runs at once across the simulated devices, and
// hands a free token to a device finishing an update (resuming after its
// reboot) before one starting an install.
//
// The bound exists only because the devices share the simulator's CPUs; on
// a real fleet a device that rebooted waits for no other device. First come,
// first served made it wait for every install that asked before it: when a
// wave's thousands of devices asked at once, no device of the wave
// confirmed until all of them had written and rebooted, and the rollout's
// next wave waited for that instead of for its min_confirmed devices.
type tokens struct {
	mu       sync.Mutex
	free     int
	resumes  []chan struct{} // waiting, in order of asking
	installs []chan struct{}
}

func newTokens(n int) *tokens { return &tokens{free: n} }

// acquire takes a token, waiting for one until ctx ends; it reports
// whether it got one. resume says the run finishes an update already under
// way.
func (t *tokens) acquire(ctx context.Context, resume bool) bool {
	t.mu.Lock()
	if t.free > 0 && len(t.resumes) == 0 && (resume || len(t.installs) == 0) {
		t.free--
		t.mu.Unlock()
		return true
	}
	granted := make(chan struct{})
	queue := &t.installs
	if resume {
		queue = &t.resumes
	}
	*queue = append(*queue, granted)
	t.mu.Unlock()

	select {
	case <-granted:
		return true
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range *queue {
		if c == granted {
			*queue = append((*queue)[:i], (*queue)[i+1:]...)
			return false
		}
	}
	// Granted as ctx ended: hand the token on.
	t.handOn()
	return false
}

// release returns a token taken by acquire.
func (t *tokens) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handOn()
}

// handOn gives a token to the first waiting resume, else the first waiting
// install, else keeps it free. t.mu is held.
func (t *tokens) handOn() {
	for _, queue := range []*[]chan struct{}{&t.resumes, &t.installs} {
		if len(*queue) > 0 {
			close((*queue)[0])
			*queue = (*queue)[1:]
			return
		}
	}
	t.free++
}
