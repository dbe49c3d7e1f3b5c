package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSimulation steps a fleet of 1,000 simulated agents through a
// rollout with an injected clock, every 10 minutes for up to four days,
// and checks where a chosen failure fraction takes it, with five seeds
// each. Early in a wave the rate is counted over few devices, so a
// fraction below the maximum can still halt a rollout by bad luck (two
// failures among the first 20 is 10 %); the fractions here are far enough
// from the maximum, and the sample large enough, that these seeds do not.
func TestSimulation(t *testing.T) {
	policy := Policy{
		Waves:          []float64{1, 10, 50, 100},
		WaveDuration:   time.Hour,
		MaxFailureRate: 0.1,
		MinConfirmed:   20,
		PenaltyAfter:   3,
	}
	tests := []struct {
		name   string
		failP  float64 // chance that one attempt fails; devices retry until boxed
		broken int     // devices whose every attempt fails

		wantState State
		wantWave  int // the wave it ends at; for Halted, the latest it may halt at
	}{
		{name: "no failures completes", failP: 0, wantState: Complete, wantWave: 3},
		{name: "transient failures below the maximum complete", failP: 0.01, wantState: Complete, wantWave: 3},
		{name: "failures far above the maximum halt in the first wave", failP: 0.6, wantState: Halted, wantWave: 0},
		{name: "failures above the maximum halt", failP: 0.2, wantState: Halted, wantWave: 2},
		{name: "broken devices below the maximum reach every wave but do not complete", broken: 30, wantState: Active, wantWave: 3},
	}
	for _, tt := range tests {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/seed %d", tt.name, seed), func(t *testing.T) {
				ch := Channel{Fleet: "sim", Name: "production", Policy: policy, Release: v140}
				s := newSim(seed, ch, 1000, tt.failP)
				for i := range tt.broken {
					s.broken[i*1000/tt.broken] = true
				}
				res, steps := simulate(t, s)
				r := res.Rollout
				t.Logf("after %d steps: %s at wave %d: %s; total %+v", steps, r.State, r.Wave, r.Reason, res.Total)
				if r.State != tt.wantState || r.Wave > tt.wantWave || (tt.wantState != Halted && r.Wave != tt.wantWave) {
					t.Fatalf("%s at wave %d, want %s at wave %d", r.State, r.Wave, tt.wantState, tt.wantWave)
				}
				switch r.State {
				case Complete:
					if res.Total.Confirmed != 1000 || r.LastApplied != v140.Commit {
						t.Errorf("complete with %d of 1000 confirmed, last applied %q", res.Total.Confirmed, r.LastApplied)
					}
				case Halted:
					if !strings.HasPrefix(r.Reason, "halted: ") || !strings.Contains(r.Reason, "> max 10.0%") {
						t.Errorf("reason %q does not say why it halted", r.Reason)
					}
					// Nothing past the halted wave was offered.
					for _, w := range res.Waves[r.Wave+1:] {
						if w.Confirmed+w.Failed+w.InProgress > 0 {
							t.Errorf("wave %d, never advertised, has devices that tried the release: %+v", w.Index, w.Counts)
						}
					}
				case Active:
					if got, want := res.Total.Penalized, tt.broken; got != want {
						t.Errorf("%d devices in the penalty box, want the %d broken ones", got, want)
					}
					if got, want := res.Total.Confirmed, 1000-tt.broken; got != want {
						t.Errorf("%d confirmed, want %d", got, want)
					}
					if c := condition(res.Conditions, ConditionDegraded); !c.Status {
						t.Errorf("Degraded %+v, want true", c)
					}
				}
			})
		}
	}
}

// simulate runs s from no rollout every 10 minutes for up to four days,
// checking at every advance that no wave left behind is above the maximum
// failure rate, and returns the last result and the number of steps.
func simulate(t *testing.T, s *sim) (*Result, int) {
	p := s.ch.Policy
	steps := 0
	res, err := s.run(Rollout{}, t0, 10*time.Minute, 4*24*6, func(prev Rollout, res *Result) {
		steps++
		if res.Rollout.Wave <= prev.Wave || prev.Digest != res.Rollout.Digest {
			return
		}
		for _, w := range res.Waves[:prev.Wave+1] {
			over := max(w.Confirmed+w.Failed, min(p.MinConfirmed, w.Targeted))
			if over > 0 && float64(w.Failed)/float64(over) > p.MaxFailureRate {
				t.Errorf("advanced to wave %d past wave %d with %d of %d failed", res.Rollout.Wave, w.Index, w.Failed, over)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, steps
}
