// Package backoff computes retry delays: exponential, capped, with full
// jitter, so a fleet that lost its server does not come back in lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// A Policy describes the delays between attempts.
type Policy struct {
	Base time.Duration // first delay's upper bound
	Max  time.Duration // cap on any delay
	// Attempts is how many attempts in all; 0 means until ctx ends.
	Attempts int
}

// Delay returns the delay before retry number n (0 for the first retry):
// uniformly random in [0, min(Max, Base*2^n)].
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// Retry calls fn until it succeeds, returns a permanent error (see
// Permanent), ctx ends or the attempts run out; it returns fn's last error.
func (p Policy) Retry(ctx context.Context, fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		if perm, ok := err.(permanent); ok {
			return perm.err
		}
		if p.Attempts > 0 && n+1 >= p.Attempts {
			return err
		}
		t := time.NewTimer(p.Delay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: Retry returns it at once.
func Permanent(err error) error { return permanent{err} }
