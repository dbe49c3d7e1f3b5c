package rollout

import (
	"fmt"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// ConditionType names a status condition of a channel or a device.
type ConditionType string

// The condition types. Every channel and device has all four, in this order.
const (
	// ConditionReady: it runs what Git says, confirmed. For a channel: the
	// rollout is Complete.
	ConditionReady ConditionType = "Ready"
	// ConditionProgressing: it is moving towards what Git says. For a
	// channel: the rollout is Active and not yet complete.
	ConditionProgressing ConditionType = "Progressing"
	// ConditionDegraded: something failed the release. For a channel: at
	// least one device did.
	ConditionDegraded ConditionType = "Degraded"
	// ConditionHalted: it is stopped short of what Git says. For a channel:
	// the rollout is Halted, Paused or Aborted.
	ConditionHalted ConditionType = "Halted"
)

// Condition is one status condition: whether it holds, a CamelCase reason
// for programs and a message for people.
type Condition struct {
	Type    ConditionType
	Status  bool
	Reason  string
	Message string
}

// channelConditions returns the channel's conditions for r.
func (r *Result) channelConditions() []Condition {
	ro, rel, t := &r.Rollout, &r.ch.Release, &r.Total
	ready := Condition{Type: ConditionReady, Reason: "RollingOut",
		Message: fmt.Sprintf("%d of %s run %s confirmed", t.Confirmed, devices(t.Targeted), rel.Version)}
	progressing := Condition{Type: ConditionProgressing, Reason: stateReason(ro.State), Message: ro.Reason}
	degraded := Condition{Type: ConditionDegraded, Reason: "NoFailures",
		Message: fmt.Sprintf("no device failed %s", rel.Version)}
	halted := Condition{Type: ConditionHalted, Reason: "Running", Message: ro.Reason}

	switch ro.State {
	case Complete:
		ready.Status, ready.Reason = true, "Complete"
		ready.Message = fmt.Sprintf("every device runs %s (commit %s) confirmed (%s)", rel.Version, rel.Commit, devices(t.Targeted))
		if t.Targeted == 0 {
			ready.Message = "no device follows the channel"
		}
	case Active:
		progressing.Status = true
		progressing.Reason, progressing.Message = r.progress()
	case Halted:
		ready.Reason = "Halted"
		halted.Status, halted.Reason = true, "FailureRate"
	case Paused, Aborted:
		ready.Reason = stateReason(ro.State)
		halted.Status, halted.Reason = true, stateReason(ro.State)
	}
	if t.Failed > 0 {
		degraded.Status, degraded.Reason = true, "DevicesFailed"
		degraded.Message = fmt.Sprintf("%s failed %s, %d of them in the penalty box", devices(t.Failed), rel.Version, t.Penalized)
	}
	return []Condition{ready, progressing, degraded, halted}
}

// stateReason is a condition reason naming state s: "Paused".
func stateReason(s State) string {
	switch s {
	case Active:
		return "Active"
	case Paused:
		return "Paused"
	case Aborted:
		return "Aborted"
	case Halted:
		return "Halted"
	case Complete:
		return "Complete"
	}
	return "Unknown"
}

// progress says what an Active rollout waits for.
func (r *Result) progress() (reason, message string) {
	e := step{ch: r.ch, now: r.now, next: r.Rollout, res: r}
	g := e.gate(r.Rollout.Wave)
	w := r.Waves[r.Rollout.Wave]
	rest := fmt.Sprintf("%d in progress, %d not started, %d failed, %d offline", w.InProgress, w.NotStarted, w.Failed, w.Offline)
	switch {
	case r.Rollout.Wave == len(r.Waves)-1:
		t := r.Total
		return "Converging", fmt.Sprintf("%s, the last: %d of %s run %s confirmed; waiting for the rest (%d in progress, %d not started, %d failed, %d offline)",
			g.name(), t.Confirmed, devices(t.Targeted), r.ch.Release.Version, t.InProgress, t.NotStarted, t.Failed, t.Offline)
	case !g.confirmedEnough():
		return "WaitingForConfirmations", fmt.Sprintf("%s: %d of %d confirmed boots needed (%s)", g.name(), g.confirmed, g.need, rest)
	case !g.soakedEnough():
		end := r.Rollout.WaveStarted.Add(g.soak)
		return "Soaking", fmt.Sprintf("%s: %d confirmed, %s failed; soaks until %s (%v more)",
			g.name(), g.confirmed, g.failedText(), end.UTC().Format(time.RFC3339), end.Sub(r.now))
	}
	return "ReadyToAdvance", fmt.Sprintf("%s: %d confirmed, %s failed, soaked; advances at the next step", g.name(), g.confirmed, g.failedText())
}

// DeviceReport is where one device stands in its channel's rollout, and how
// far it is from what Git says.
type DeviceReport struct {
	ID string

	// Bucket is the device's wave bucket, Wave the first wave that reaches
	// it and Reached whether the rollout has advertised that wave.
	Bucket  uint32
	Wave    int
	Reached bool

	Phase Phase
	// Penalized reports whether the device is in the penalty box: it failed
	// the release Policy.PenaltyAfter times and is not offered it again
	// until its failures are cleared.
	Penalized bool

	// Conditions are the device's Ready, Progressing, Degraded and Halted
	// conditions, in that order.
	Conditions []Condition

	// LastAppliedRevision is the commit the device runs confirmed, or "" when
	// it runs a release it has not confirmed (the commit of its confirmed
	// slot is not reported then). LastAttemptedRevision is the release's
	// commit once the device has tried it, else the commit it runs.
	LastAppliedRevision   string
	LastAttemptedRevision string
}

// Device returns the report on device d against the rollout r is the
// result of: the classification Evaluate counted d under, with d's
// conditions. The API calls it for the devices it shows.
func (r *Result) Device(d Device) DeviceReport {
	rel, pol := &r.ch.Release, &r.ch.Policy
	bucket := gitfleetv1.WaveBucket(r.ch.Fleet, d.ID)
	rep := DeviceReport{
		ID:                    d.ID,
		Bucket:                bucket,
		Wave:                  waveOf(r.waves, bucket),
		Phase:                 d.classify(rel.Digest),
		LastAttemptedRevision: d.Commit,
	}
	rep.Reached = rep.Wave <= r.Rollout.Wave
	rep.Penalized = rep.Phase == Failed && d.Failures >= pol.penaltyAfter()
	if d.Confirmed {
		rep.LastAppliedRevision = d.Commit
	}
	switch rep.Phase {
	case Confirmed, Failed, InProgress:
		rep.LastAttemptedRevision = rel.Commit
	}
	rep.Conditions = r.deviceConditions(&d, &rep)
	return rep
}

// deviceConditions returns d's conditions.
func (r *Result) deviceConditions(d *Device, rep *DeviceReport) []Condition {
	rel, ro := &r.ch.Release, &r.Rollout
	runs := "reports no release"
	if d.Version != "" || d.Digest != "" {
		runs = fmt.Sprintf("runs %s (commit %s) in slot %s", d.Version, d.Commit, d.Slot)
		if !d.Confirmed {
			runs += ", not confirmed"
		}
	}
	ready := Condition{Type: ConditionReady, Reason: "NotStarted", Message: fmt.Sprintf("%s; wants %s", runs, rel.Version)}
	progressing := Condition{Type: ConditionProgressing}
	degraded := Condition{Type: ConditionDegraded, Reason: "NoFailures", Message: fmt.Sprintf("no failure of %s", rel.Version)}
	halted := Condition{Type: ConditionHalted, Reason: "NotHalted"}

	switch rep.Phase {
	case Overridden:
		ready.Reason = "Overridden"
		progressing.Reason, progressing.Message = "Overridden", fmt.Sprintf("an operator's override (%s) stands", d.Override)
		halted.Status, halted.Reason, halted.Message = true, "Overridden", progressing.Message
	case Confirmed:
		ready.Status, ready.Reason, ready.Message = true, "Confirmed", runs
		progressing.Reason, progressing.Message = "Confirmed", runs
	case Failed:
		ready.Reason = "Failed"
		degraded.Status, degraded.Reason = true, "Failed"
		degraded.Message = fmt.Sprintf("failed %s %d times (penalty box at %d); last error %s", rel.Version, d.Failures, r.ch.Policy.penaltyAfter(), d.LastError)
		progressing.Reason, progressing.Message = "Failed", degraded.Message
		if rep.Penalized {
			degraded.Reason = "PenaltyBox"
			progressing.Reason = "PenaltyBox"
			halted.Status, halted.Reason = true, "PenaltyBox"
			halted.Message = fmt.Sprintf("in the penalty box: not offered %s until its failures are cleared", rel.Version)
		}
	case InProgress:
		ready.Reason = "Updating"
		progressing.Status, progressing.Reason = true, "Updating"
		progressing.Message = fmt.Sprintf("installing %s: %s", rel.Version, d.UpdateState)
		if d.Digest == rel.Digest {
			progressing.Message = fmt.Sprintf("runs %s; boot not confirmed yet", rel.Version)
		}
	case NotStarted:
		switch {
		case !rep.Reached:
			progressing.Reason = "WaitingForWave"
			progressing.Message = fmt.Sprintf("bucket %d is in wave %d (%s%%); the rollout is at wave %d (%s%%)",
				rep.Bucket, rep.Wave, percent(r.ch.Policy.Waves[rep.Wave]), ro.Wave, percent(r.ch.Policy.Waves[ro.Wave]))
		case !d.Online:
			progressing.Reason, progressing.Message = "Offline", fmt.Sprintf("offline; %s is offered when it is back", rel.Version)
		default:
			progressing.Reason, progressing.Message = "Offered", fmt.Sprintf("offered %s; not started", rel.Version)
		}
	}
	if rep.Phase != Confirmed && rep.Phase != Overridden && !rep.Penalized {
		switch ro.State {
		case Paused, Halted, Aborted:
			halted.Status, halted.Reason, halted.Message = true, "Rollout"+stateReason(ro.State), ro.Reason
			if !progressing.Status {
				progressing.Reason, progressing.Message = halted.Reason, ro.Reason
			}
		}
	}
	if !d.Online && progressing.Status {
		progressing.Message += " (offline)"
	}
	return []Condition{ready, progressing, degraded, halted}
}
