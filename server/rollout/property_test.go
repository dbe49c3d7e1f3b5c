package rollout

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// TestPropertyRandomFleets walks random fleets under random policies,
// operators' commands and device churn, and checks at every step, against
// an oracle written from the rules rather than from the code, that the
// rollout never advances past a wave whose failure rate is above the
// maximum, never keeps going with one, and never completes with a device
// that does not run the release confirmed.
func TestPropertyRandomFleets(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	seen := map[string]int{}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 2))
		ch := Channel{Fleet: "prop", Name: "c", Policy: randomPolicy(rng), Release: v140}
		s := newSim(seed, ch, rng.IntN(300), rng.Float64()*0.6)
		s.churn = true
		for i := range s.devices {
			if rng.Float64() < 0.05 {
				s.broken[i] = true
			}
		}
		now := t0
		cur := randomRollout(rng, len(ch.Policy.Waves), now)
		for step := range 40 {
			res, err := Evaluate(ch, cur, s.devices, now)
			if err != nil {
				t.Fatalf("seed %d step %d: Evaluate: %v", seed, step, err)
			}
			if msg := violation(ch, cur, s, now, res); msg != "" {
				t.Fatalf("seed %d step %d: %s\npolicy %+v\nfrom %+v\n  to %+v", seed, step, msg, ch.Policy, cur, res.Rollout)
			}
			seen[transition(cur, res.Rollout)]++
			cur = res.Rollout
			if rng.Float64() < 0.08 {
				cmd := []Event{Pause, Resume, Abort}[rng.IntN(3)]
				if next, err := Apply(cur, cmd, now, "property"); err == nil {
					cur = next
				}
			}
			s.step(res)
			now = now.Add(time.Duration(rng.IntN(90)) * time.Minute)
		}
	}
	// The walk must have exercised every rule it checks.
	for _, tr := range []string{"start", "advance", "halt", "complete", "reopen"} {
		if seen[tr] == 0 {
			t.Errorf("no %s in %d walks: %v", tr, seeds, seen)
		}
	}
	t.Logf("transitions seen: %v", seen)
}

// transition names what Evaluate did from cur to next.
func transition(cur, next Rollout) string {
	switch {
	case cur.Digest != next.Digest:
		return "start"
	case next.Wave > cur.Wave:
		return "advance"
	case cur.State == next.State:
		return "stay"
	case next.State == Halted:
		return "halt"
	case next.State == Complete:
		return "complete"
	case cur.State == Complete && next.State == Active:
		return "reopen"
	}
	return string(cur.State) + "->" + string(next.State)
}

func randomPolicy(rng *rand.Rand) Policy {
	var bps []int
	for range rng.IntN(5) {
		bps = append(bps, 1+rng.IntN(9999))
	}
	slices.Sort(bps)
	bps = slices.Compact(append(bps, 10000))
	p := Policy{
		WaveDuration:   []time.Duration{0, 10 * time.Minute, time.Hour}[rng.IntN(3)],
		MaxFailureRate: []float64{0, 0.05, 0.1, 0.25, 0.5, 1, rng.Float64()}[rng.IntN(7)],
		MinConfirmed:   rng.IntN(12),
		PenaltyAfter:   rng.IntN(4),
	}
	for _, bp := range bps {
		p.Waves = append(p.Waves, float64(bp)/100)
	}
	return p
}

func randomRollout(rng *rand.Rand, waves int, now time.Time) Rollout {
	if rng.IntN(2) == 0 {
		return Rollout{}
	}
	states := []State{Active, Paused, Aborted, Halted, Complete}
	r := at(rng.IntN(waves), states[rng.IntN(len(states))], now.Add(-time.Duration(rng.IntN(120))*time.Minute))
	return r
}

// oracle is the rules' view of one wave.
type oracle struct {
	targeted, confirmed, failed int
}

// oracleWaves counts each wave's devices from the rules in ROLLOUT.md.
func oracleWaves(ch Channel, s *sim) []oracle {
	ws := make([]oracle, len(ch.Policy.Waves))
	for i, d := range s.devices {
		if d.Override != gitfleetv1.Action_ACTION_UNSPECIFIED && d.Override != gitfleetv1.Action_ACTION_NONE && d.Override != gitfleetv1.Action_ACTION_RETRY && !d.Boxed {
			continue // an operator's override: not in the rollout
		}
		w := 0
		for s.buckets[i] >= uint32(ch.Policy.Waves[w]*100+0.5) {
			w++
		}
		ws[w].targeted++
		switch {
		case d.Digest == ch.Release.Digest && d.Confirmed:
			ws[w].confirmed++
		case d.Failures > 0:
			ws[w].failed++
		}
	}
	return ws
}

// rate is a wave's failure rate by the rules, with excused failures.
func (o oracle) rate(p Policy, excused int) float64 {
	over := max(o.confirmed+o.failed, min(p.MinConfirmed, o.targeted))
	if over == 0 {
		return 0
	}
	return float64(o.failed-min(excused, o.failed)) / float64(over)
}

// violation returns how res breaks the rules, or "".
func violation(ch Channel, cur Rollout, s *sim, now time.Time, res *Result) string {
	next, p := res.Rollout, ch.Policy
	ws := oracleWaves(ch, s)
	excused := func(i int) int {
		if i < len(next.Excused) {
			return next.Excused[i]
		}
		return 0
	}
	firstBad := -1
	for i := 0; i <= min(cur.Wave, len(ws)-1); i++ {
		if ws[i].rate(p, excused(i)) > p.MaxFailureRate {
			firstBad = i
			break
		}
	}
	total := oracle{}
	for _, w := range ws {
		total.targeted += w.targeted
		total.confirmed += w.confirmed
	}
	if cur.Digest != ch.Release.Digest {
		if next.State != Active || next.Wave != 0 {
			return "a new release did not start at wave 0"
		}
		return ""
	}
	switch {
	case next.Wave != cur.Wave && next.Wave != cur.Wave+1:
		return "the wave moved by more than one"
	case next.Wave == cur.Wave+1 && cur.State != Active:
		return "advanced from " + string(cur.State)
	case next.Wave == cur.Wave+1 && firstBad >= 0:
		return "advanced past a wave whose failure rate is above the maximum"
	case next.Wave == cur.Wave+1 && ws[cur.Wave].confirmed < max(1, min(p.MinConfirmed, ws[cur.Wave].targeted-ws[cur.Wave].failed)) && ws[cur.Wave].targeted > 0:
		return "advanced without enough confirmed boots"
	case next.Wave == cur.Wave+1 && now.Sub(cur.WaveStarted) < p.WaveDuration:
		return "advanced before the soak time"
	case next.State == Complete && total.confirmed != total.targeted:
		return "complete with devices that do not run the release confirmed"
	case next.State == Complete && cur.State != Complete && next.Wave != len(ws)-1:
		return "completed before the last wave"
	case (next.State == Active || next.State == Complete || next.State == Paused) && firstBad >= 0:
		return "kept going with a wave above the maximum failure rate"
	case next.State == Halted && cur.State != Halted && firstBad < 0:
		return "halted without a wave above the maximum failure rate"
	}
	switch cur.State {
	case Paused:
		if next.State != Paused && next.State != Halted {
			return "left paused by itself"
		}
	case Halted, Aborted:
		if next.State != cur.State {
			return "left " + string(cur.State) + " by itself"
		}
	}
	if got, want := res.Total.Targeted, total.targeted; got != want {
		return "counts differ from the oracle's"
	}
	return ""
}
