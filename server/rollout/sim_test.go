package rollout

import (
	"fmt"
	"math/rand/v2"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// sim is a fleet of simulated agents following one channel: each acts on
// the channel state the rollout advertises and on its own overrides, as a
// real agent would, and reports statuses and failures back.
type sim struct {
	rng     *rand.Rand
	ch      Channel
	devices []Device
	buckets []uint32 // WaveBucket of each device, computed once

	failP  float64      // chance that one attempt fails
	broken map[int]bool // devices whose every attempt fails
	// retry holds the devices with a retry order they have not used: as
	// the agent, a device whose last attempt at the release failed tries it
	// again only on such an order, once.
	retry map[string]bool

	// churn adds what an operator and a real fleet do: devices going
	// offline and coming back, joining, being pinned.
	churn bool
}

func newSim(seed uint64, ch Channel, n int, failP float64) *sim {
	s := &sim{rng: rand.New(rand.NewPCG(seed, 1)), ch: ch, failP: failP, broken: map[int]bool{}, retry: map[string]bool{}}
	for range n {
		s.join()
	}
	return s
}

// join adds an online device that runs 1.3.0.
func (s *sim) join() {
	id := fmt.Sprintf("sim-%d", len(s.devices))
	s.devices = append(s.devices, runs(v130)(id))
	s.buckets = append(s.buckets, gitfleetv1.WaveBucket(s.ch.Fleet, id))
}

// step moves every device one step on what res advertises.
func (s *sim) step(res *Result) {
	for _, o := range res.Overrides {
		for i := range s.devices {
			if d := &s.devices[i]; d.ID == o.DeviceID {
				d.Override, d.Boxed = o.Action, o.Action == gitfleetv1.Action_ACTION_CANCEL
				if o.Action == gitfleetv1.Action_ACTION_RETRY { // as the controller remembers it
					d.Retried, d.RetriedAt = true, d.Failures
					s.retry[d.ID] = true
				}
			}
		}
	}
	advert, state := res.Wave(), res.State()
	rel := s.ch.Release
	for i := range s.devices {
		d := &s.devices[i]
		if s.churn && s.rng.Float64() < 0.02 {
			d.Online = !d.Online
		}
		if !d.Online {
			continue
		}
		cancelled := d.Override == gitfleetv1.Action_ACTION_CANCEL || state == gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED
		following := d.Override == gitfleetv1.Action_ACTION_UNSPECIFIED || d.Override == gitfleetv1.Action_ACTION_NONE ||
			d.Override == gitfleetv1.Action_ACTION_RETRY
		failedLast := d.LastError == gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK
		switch {
		case d.TargetDigest == rel.Digest && d.UpdateState == "writing":
			// Before the point of no return: a cancel stops it.
			if cancelled {
				d.UpdateState, d.TargetDigest, d.LastError = "idle", "", gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED
			} else if s.rng.Float64() < 0.5 {
				d.Version, d.Digest, d.Commit, d.Confirmed, d.UpdateState = rel.Version, rel.Digest, rel.Commit, false, "testing"
			}
		case d.Digest == rel.Digest && !d.Confirmed:
			if s.rng.Float64() < 0.5 {
				break
			}
			if s.broken[i] || s.rng.Float64() < s.failP {
				*d = Device{ID: d.ID, Online: true, Version: v130.Version, Digest: v130.Digest, Commit: v130.Commit,
					Slot: "a", Confirmed: true, UpdateState: "idle", LastError: gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK,
					Failures: d.Failures + 1, Override: d.Override, Boxed: d.Boxed, Retried: d.Retried, RetriedAt: d.RetriedAt}
			} else {
				d.Confirmed, d.UpdateState, d.TargetDigest = true, "idle", ""
			}
		case following && d.Digest != rel.Digest && state == gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE && advert.Includes(s.buckets[i]) &&
			(!failedLast || s.retry[d.ID]):
			if s.rng.Float64() < 0.5 {
				d.UpdateState, d.TargetDigest = "writing", rel.Digest
				delete(s.retry, d.ID)
			}
		}
		if s.churn && s.rng.Float64() < 0.002 {
			d.Override = gitfleetv1.Action_ACTION_PIN
			d.Boxed = false
		}
	}
	if s.churn && s.rng.Float64() < 0.1 {
		s.join()
	}
}

// run evaluates and steps the fleet every interval until the rollout halts,
// completes or settles at its last wave with every device confirmed or
// in the penalty box, or steps
// run out, calling each with every result.
func (s *sim) run(cur Rollout, now time.Time, interval time.Duration, steps int, each func(prev Rollout, res *Result)) (*Result, error) {
	var res *Result
	for range steps {
		var err error
		res, err = Evaluate(s.ch, cur, s.devices, now)
		if err != nil {
			return nil, err
		}
		if each != nil {
			each(cur, res)
		}
		cur = res.Rollout
		settled := cur.Wave == len(res.Waves)-1 && res.Total.Confirmed+res.Total.Penalized == res.Total.Targeted
		if cur.State == Halted || cur.State == Complete || settled {
			break
		}
		s.step(res)
		now = now.Add(interval)
	}
	return res, nil
}
