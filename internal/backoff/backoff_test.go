package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/backoff"
)

func TestDelayIsCappedAndJittered(t *testing.T) {
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n := range 20 {
		limit := min(p.Base<<n, p.Max)
		if n > 10 {
			limit = p.Max
		}
		for range 50 {
			if d := p.Delay(n); d < 0 || d > limit {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", n, d, limit)
			}
		}
	}
}

func TestRetry(t *testing.T) {
	p := backoff.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 4}
	calls := 0
	err := p.Retry(context.Background(), func() error { calls++; return errors.New("down") })
	if err == nil || calls != 4 {
		t.Errorf("err = %v after %d calls, want an error after 4", err, calls)
	}
	calls = 0
	err = p.Retry(context.Background(), func() error {
		calls++
		if calls < 3 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("err = %v after %d calls, want success on the 3rd", err, calls)
	}
	bad := errors.New("forbidden")
	calls = 0
	err = p.Retry(context.Background(), func() error { calls++; return backoff.Permanent(bad) })
	if !errors.Is(err, bad) || calls != 1 {
		t.Errorf("permanent: err = %v after %d calls, want it at once", err, calls)
	}
}
