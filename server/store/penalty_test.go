package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPenaltyBox(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		stores := replicas(t, dsn, 2)
		s := stores[0]
		failures := func(device, release string) int {
			t.Helper()
			n, err := s.Failures(ctx, device, release)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if got := failures("d1", "1.5.0"); got != 0 {
			t.Errorf("Failures of a device that never failed = %d, want 0", got)
		}
		for want := 1; want <= 3; want++ {
			got, err := s.RecordFailure(ctx, "d1", "1.5.0")
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("RecordFailure = %d, want %d", got, want)
			}
		}
		if _, err := s.RecordFailure(ctx, "d1", "1.6.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFailure(ctx, "d2", "1.5.0"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			device, release string
			want            int
		}{{"d1", "1.5.0", 3}, {"d1", "1.6.0", 1}, {"d2", "1.5.0", 1}, {"d2", "1.6.0", 0}} {
			if got := failures(c.device, c.release); got != c.want {
				t.Errorf("Failures(%s, %s) = %d, want %d", c.device, c.release, got, c.want)
			}
		}

		for _, c := range []struct {
			release string
			want    map[string]int
		}{{"1.5.0", map[string]int{"d1": 3, "d2": 1}}, {"1.6.0", map[string]int{"d1": 1}}, {"1.7.0", map[string]int{}}} {
			penalties, err := s.ReleaseFailures(ctx, c.release)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for d, p := range penalties {
				got[d] = p.Failures
				if p.Last.IsZero() {
					t.Errorf("ReleaseFailures(%s)[%s] has no time of the last failure", c.release, d)
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("ReleaseFailures(%s) (-want +got):\n%s", c.release, diff)
			}
		}

		// A retry order is kept beside the failures it answers, for every
		// replica to see, and goes with them.
		retried := func(device, release string) (int, bool) {
			t.Helper()
			penalties, err := stores[1].ReleaseFailures(ctx, release)
			if err != nil {
				t.Fatal(err)
			}
			return penalties[device].RetriedAt, penalties[device].Retried
		}
		if at, ok := retried("d1", "1.5.0"); ok {
			t.Errorf("a retry at %d before any was recorded", at)
		}
		if err := s.RecordRetry(ctx, "d1", "1.5.0", 3); err != nil {
			t.Fatal(err)
		}
		if at, ok := retried("d1", "1.5.0"); !ok || at != 3 {
			t.Errorf("after RecordRetry at 3: retried at %d, %v", at, ok)
		}
		if _, ok := retried("d1", "1.6.0"); ok {
			t.Error("RecordRetry of 1.5.0 marked 1.6.0 retried")
		}
		if err := s.RecordRetry(ctx, "d9", "1.5.0", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("RecordRetry of a device with no failures: %v, want ErrNotFound", err)
		}

		if err := s.ClearPenalty(ctx, "d1", "1.5.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFailure(ctx, "d1", "1.5.0"); err != nil {
			t.Fatal(err)
		}
		if at, ok := retried("d1", "1.5.0"); ok {
			t.Errorf("ClearPenalty kept the retry at %d", at)
		}
		if err := s.ClearPenalty(ctx, "d1", "1.5.0"); err != nil {
			t.Fatal(err)
		}
		if got := failures("d1", "1.5.0"); got != 0 {
			t.Errorf("Failures after ClearPenalty = %d, want 0", got)
		}
		if got := failures("d1", "1.6.0"); got != 1 {
			t.Errorf("ClearPenalty of 1.5.0 cleared 1.6.0: Failures = %d, want 1", got)
		}
		if err := s.ClearPenalty(ctx, "d1", "1.5.0"); err != nil {
			t.Errorf("ClearPenalty of a clear device: %v", err)
		}

		// Failures reported to replicas at once all count.
		const n = 20
		race(n, func(i int) {
			if _, err := stores[i%len(stores)].RecordFailure(ctx, "d3", "1.5.0"); err != nil {
				t.Error(err)
			}
		})
		if got := failures("d3", "1.5.0"); got != n {
			t.Errorf("Failures after %d concurrent RecordFailure = %d, want %d", n, got, n)
		}
	})
}
