package rollout

import (
	"fmt"
	"slices"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Channel is what Git says about one channel of a fleet: its policy and the
// release it should run.
type Channel struct {
	// Fleet is the fleet's id: it goes into every device's wave bucket.
	Fleet string
	// Name is the channel's name, as in fleet.yaml and the topic.
	Name    string
	Policy  Policy
	Release Release
}

// Counts counts devices by Phase. Targeted is Confirmed + Failed +
// InProgress + NotStarted: the devices that follow the channel. Overridden
// devices are not targeted. Penalized (in the penalty box) is part of
// Failed, and Offline part of Targeted.
type Counts struct {
	Targeted   int
	Confirmed  int
	Failed     int
	InProgress int
	NotStarted int
	Penalized  int
	Offline    int
	Overridden int
}

func (c *Counts) add(p Phase, penalized, online bool) {
	if p == Overridden {
		c.Overridden++
		return
	}
	c.Targeted++
	switch p {
	case Confirmed:
		c.Confirmed++
	case Failed:
		c.Failed++
	case InProgress:
		c.InProgress++
	default:
		c.NotStarted++
	}
	if penalized {
		c.Penalized++
	}
	if !online {
		c.Offline++
	}
}

// WaveCount counts the devices a wave adds to the rollout: those whose bucket
// is at or above the previous wave's threshold and below this one's.
type WaveCount struct {
	// Index is the wave's index in Policy.Waves, Percent its share there and
	// Threshold the same in basis points.
	Index     int
	Percent   float64
	Threshold uint32
	// Reached reports whether the rollout has advertised this wave.
	Reached bool
	Counts
}

// Override is a change to the DesiredState the server publishes to one
// device, for the penalty box. A device enters the box with ACTION_CANCEL:
// the agent stops an update that has not switched the bootloader yet and
// does not start the channel's release again while the override stands. It
// leaves, when its failures are cleared or the channel moves to another
// release, with ACTION_RETRY of the channel's release: it follows its
// channel again, and tries the release again if its last attempt failed.
// Below the box, a device that failed the release is ordered to retry it
// (ACTION_RETRY) once per failure, Policy.RetryAfter after the failure, while
// the rollout is active: the agent never retries a failed release by itself.
type Override struct {
	DeviceID string
	Action   gitfleetv1.Action
	Reason   string
}

// Result is one step of a channel's rollout.
type Result struct {
	// Rollout is the next state, for the store; Changed reports whether it
	// differs from the state Evaluate was given.
	Rollout Rollout
	Changed bool

	// Threshold is the advertised wave's threshold in basis points; Wave and
	// State give what goes into the channel's ChannelState.
	Threshold uint32

	// Waves counts each wave's devices; Total counts them all.
	Waves []WaveCount
	Total Counts

	// Penalized lists the devices in the penalty box, in input order, and
	// Overrides the DesiredState changes that put devices in it or let them
	// out: only changes, so an empty list means nothing to publish.
	Penalized []string
	Overrides []Override

	// Conditions are the channel's Ready, Progressing, Degraded and Halted
	// conditions, in that order.
	Conditions []Condition

	// LastAppliedRevision is the commit of the last release the channel
	// completed; LastAttemptedRevision the commit of the release it rolls
	// out now.
	LastAppliedRevision   string
	LastAttemptedRevision string

	ch    Channel
	waves []*gitfleetv1.Wave
	now   time.Time
}

// Wave returns the wave to advertise in the channel's ChannelState.
func (r *Result) Wave() *gitfleetv1.Wave {
	return &gitfleetv1.Wave{Index: uint32(r.Rollout.Wave), Threshold: r.Threshold}
}

// State returns the rollout state to advertise in the channel's
// ChannelState.
func (r *Result) State() gitfleetv1.RolloutState {
	return r.Rollout.State.Wire()
}

// Evaluate takes one step of the rollout of ch.Release on the channel ch,
// whose rollout is in state cur, whose devices are devices and whose clock
// says now. It is deterministic and does no I/O; ROLLOUT.md gives its rules.
// In short:
//
//   - A release other than cur's starts a new rollout: wave 0, Active.
//   - In Active, Paused and Complete, a reached wave whose failure rate is
//     above the policy's maximum halts the rollout, naming the wave.
//   - In Active, the wave advances by one when its devices confirmed enough
//     healthy boots of the release and it soaked for the policy's wave
//     duration; at the last wave the rollout completes when every device
//     (but those an operator overrode) runs the release confirmed.
//   - Paused, Halted and Aborted are left only by Apply.
//
// It returns an error only for input it cannot judge: an invalid policy, a
// channel with no fleet or release, a rollout in an unknown state.
func Evaluate(ch Channel, cur Rollout, devices []Device, now time.Time) (*Result, error) {
	thresholds, err := ch.Policy.thresholds()
	if err != nil {
		return nil, fmt.Errorf("evaluate channel %s: %w", ch.Name, err)
	}
	switch {
	case ch.Fleet == "":
		return nil, fmt.Errorf("evaluate channel %s: no fleet", ch.Name)
	case ch.Release.Digest == "":
		return nil, fmt.Errorf("evaluate channel %s: no release digest", ch.Name)
	case cur.Digest == ch.Release.Digest && !cur.State.Valid():
		return nil, fmt.Errorf("evaluate channel %s: rollout of %s: unknown state %q", ch.Name, cur.Version, cur.State)
	case cur.Wave < 0:
		return nil, fmt.Errorf("evaluate channel %s: rollout of %s: wave %d is negative", ch.Name, cur.Version, cur.Wave)
	}

	e := &step{ch: ch, now: now, next: cur}
	e.next.Excused = slices.Clone(cur.Excused)
	started := cur.Digest != ch.Release.Digest
	if started {
		e.start(cur)
	}
	if last := len(thresholds) - 1; e.next.Wave > last {
		// The policy lost waves during the rollout: the rollout is past
		// them all, so it stands at the new last one.
		e.next.Wave = last
	}
	e.res = &Result{
		Threshold:             thresholds[e.next.Wave],
		Waves:                 make([]WaveCount, len(thresholds)),
		LastAttemptedRevision: ch.Release.Commit,
		ch:                    ch,
		now:                   now,
		waves:                 make([]*gitfleetv1.Wave, len(thresholds)),
	}
	for i, t := range thresholds {
		e.res.waves[i] = &gitfleetv1.Wave{Index: uint32(i), Threshold: t}
		e.res.Waves[i] = WaveCount{Index: i, Percent: ch.Policy.Waves[i], Threshold: t, Reached: i <= e.next.Wave}
	}
	for i := range devices {
		e.count(&devices[i])
	}
	if e.next.AcceptFailures {
		e.next.Excused = make([]int, len(thresholds))
		for i := 0; i <= e.next.Wave; i++ {
			e.next.Excused[i] = e.res.Waves[i].Failed
		}
		e.next.AcceptFailures = false
	}
	if !started {
		// Starting is this step's transition: wave 0 is advertised at
		// least once, and judged from the next step on.
		e.decide()
	}

	e.res.Rollout = e.next
	e.res.Changed = !e.next.equal(cur)
	e.res.LastAppliedRevision = e.next.LastApplied
	e.res.Conditions = e.res.channelConditions()
	return e.res, nil
}

// step is the work of one Evaluate.
type step struct {
	ch   Channel
	now  time.Time
	next Rollout
	res  *Result
}

// start begins the rollout of the channel's release in place of cur.
func (e *step) start(cur Rollout) {
	rel := e.ch.Release
	reason := fmt.Sprintf("rollout of %s started at wave 0 (%s%%)", rel.Version, percent(e.ch.Policy.Waves[0]))
	if cur.Digest != "" {
		reason += fmt.Sprintf(", replacing %s", cur.Version)
	}
	e.next = Rollout{
		Digest:      rel.Digest,
		Version:     rel.Version,
		State:       Active,
		Since:       e.now,
		WaveStarted: e.now,
		Reason:      reason,
		LastApplied: cur.LastApplied,
	}
}

// count classifies one device and adds it to the counts, the penalty box and
// the overrides.
func (e *step) count(d *Device) {
	res := e.res
	w := waveOf(res.waves, gitfleetv1.WaveBucket(e.ch.Fleet, d.ID))
	p := d.classify(e.ch.Release.Digest)
	penalized := p == Failed && d.Failures >= e.ch.Policy.penaltyAfter()
	res.Waves[w].add(p, penalized, d.Online)
	res.Total.add(p, penalized, d.Online)
	if penalized {
		res.Penalized = append(res.Penalized, d.ID)
	}
	switch {
	case penalized && !d.Boxed && !d.operatorOverride():
		res.Overrides = append(res.Overrides, Override{
			DeviceID: d.ID,
			Action:   gitfleetv1.Action_ACTION_CANCEL,
			Reason:   fmt.Sprintf("penalty box: failed %s %d times (limit %d)", e.ch.Release.Version, d.Failures, e.ch.Policy.penaltyAfter()),
		})
	case !penalized && d.Boxed:
		// A retry order rather than ACTION_NONE: a device whose last attempt
		// at the channel's release failed tries it again only on one. For a
		// release it did not fail it is the same as ACTION_NONE.
		res.Overrides = append(res.Overrides, Override{
			DeviceID: d.ID,
			Action:   gitfleetv1.Action_ACTION_RETRY,
			Reason:   fmt.Sprintf("out of the penalty box for %s", e.ch.Release.Version),
		})
	case e.retries(d, p, penalized):
		res.Overrides = append(res.Overrides, Override{
			DeviceID: d.ID,
			Action:   gitfleetv1.Action_ACTION_RETRY,
			Reason: fmt.Sprintf("failed %s %d times (penalty box at %d); retry %v after the last failure",
				e.ch.Release.Version, d.Failures, e.ch.Policy.penaltyAfter(), e.ch.Policy.retryAfter()),
		})
	}
}

// retries reports whether device d, in phase p, is ordered to retry the
// channel's release now: it failed it (and the store counted the failure)
// but is not in the penalty box or under an operator's override, no retry
// was ordered at this count, the backoff since its last failure is over, and
// the rollout is active.
func (e *step) retries(d *Device, p Phase, penalized bool) bool {
	return p == Failed && !penalized && d.Failures > 0 && !d.Boxed && !d.operatorOverride() &&
		(!d.Retried || d.RetriedAt != d.Failures) &&
		!e.now.Before(d.LastFailure.Add(e.ch.Policy.retryAfter())) && e.next.State == Active
}

// waveOf returns the index of the first wave that includes bucket. The last
// wave includes every bucket.
func waveOf(waves []*gitfleetv1.Wave, bucket uint32) int {
	for i, w := range waves {
		if w.Includes(bucket) {
			return i
		}
	}
	return len(waves) - 1
}

// decide takes the step's transition, if any.
func (e *step) decide() {
	switch e.next.State {
	case Active, Paused, Complete:
		if reason, bad := e.failing(); bad {
			e.take(Halt, reason)
			return
		}
	}
	switch e.next.State {
	case Active:
		if e.next.Wave == len(e.res.Waves)-1 {
			if e.converged() {
				e.take(Finish, fmt.Sprintf("complete: every device runs %s confirmed (%s)", e.ch.Release.Version, devices(e.res.Total.Targeted)))
				e.next.LastApplied = e.ch.Release.Commit
			}
			return
		}
		if g := e.gate(e.next.Wave); g.open() {
			e.advance(g)
		}
	case Complete:
		if !e.converged() {
			t := e.res.Total
			e.take(Reopen, fmt.Sprintf("reopened: %d of %s do not run %s confirmed", t.Targeted-t.Confirmed, devices(t.Targeted), e.ch.Release.Version))
		}
	}
}

// take applies Evaluate's event ev with reason.
func (e *step) take(ev Event, reason string) {
	to, err := next(e.next.State, ev)
	if err != nil {
		// decide only takes events the table has: a bug.
		panic(err)
	}
	e.next.State, e.next.Since, e.next.Reason = to, e.now, reason
}

// advance moves the rollout to the next wave, whose gate g passed.
func (e *step) advance(g gate) {
	from := e.next.Wave
	e.take(Advance, fmt.Sprintf("advanced to wave %d (%s%%): wave %d (%s%%) had %d confirmed (need %d), %s failed, soaked %v",
		from+1, percent(e.ch.Policy.Waves[from+1]), from, percent(e.ch.Policy.Waves[from]),
		g.confirmed, g.need, g.failedText(), g.soaked))
	e.next.Wave = from + 1
	e.next.WaveStarted = e.now
	e.res.Threshold = e.res.waves[from+1].GetThreshold()
	e.res.Waves[from+1].Reached = true
}

// converged reports whether every targeted device runs the release
// confirmed.
func (e *step) converged() bool {
	return e.res.Total.Confirmed == e.res.Total.Targeted
}

// failing reports whether a reached wave's failure rate is above the
// policy's maximum, and the reason to halt with for the first such wave.
func (e *step) failing() (string, bool) {
	for i := 0; i <= e.next.Wave; i++ {
		if g := e.gate(i); g.exceeded() {
			return g.haltReason(), true
		}
	}
	return "", false
}
