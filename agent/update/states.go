package update

import (
	"fmt"
	"strings"
)

// A State is a persisted state of the update engine. Its name is what the
// journal, events and status reports carry.
type State string

// The states, in the order of a successful update.
const (
	Idle        State = "idle"         // running a committed slot; nothing in progress
	Checking    State = "checking"     // fetch the signed head; check trust, device type, counter, space
	Writing     State = "writing"      // stream images into the inactive slot, verifying every chunk
	Verifying   State = "verifying"    // read the written slot back and verify every chunk again
	Arming      State = "arming"       // point of no return: bootloader set to try the new slot once
	Rebooting   State = "rebooting"    // armed; reboot into the new slot
	Testing     State = "testing"      // booted: run health checks in the new slot
	Committing  State = "committing"   // make the new slot permanent
	RollingBack State = "rolling_back" // make the old slot the default again and reboot into it
	Succeeded   State = "succeeded"    // outcome: running and committed the new release
	Failed      State = "failed"       // outcome: refused or failed before the point of no return
	RolledBack  State = "rolled_back"  // outcome: back on the old slot after the new one failed
)

// An Event is what an action reports; with the state it picks the next one.
type Event string

// The events.
const (
	Offered   Event = "offered"
	Trusted   Event = "trusted"
	Refused   Event = "refused"
	Written   Event = "written"
	Verified  Event = "verified"
	Armed     Event = "armed"
	BootedNew Event = "booted_new"
	BootedOld Event = "booted_old"
	Healthy   Event = "healthy"
	Unhealthy Event = "unhealthy"
	Committed Event = "committed"
	Reverted  Event = "reverted"
	Reported  Event = "reported"
	Errored   Event = "failure"
	GaveUp    Event = "gave_up"
	Cancel    Event = "cancelled"
)

// A Transition takes From to To on Event.
type Transition struct {
	From  State
	Event Event
	To    State
}

// Transitions is the whole state machine. The engine takes no transition
// that is not in this table.
var Transitions = []Transition{
	{Idle, Offered, Checking},
	{Checking, Trusted, Writing},
	{Checking, Refused, Failed},
	{Checking, Errored, Failed},
	{Writing, Written, Verifying},
	{Writing, Errored, Failed},
	{Writing, Cancel, Failed},
	{Verifying, Verified, Arming},
	{Verifying, Errored, Failed},
	{Arming, Armed, Rebooting},
	{Arming, Errored, Failed},
	{Rebooting, BootedNew, Testing},
	{Rebooting, BootedOld, RolledBack},
	{Testing, Healthy, Committing},
	{Testing, Unhealthy, RollingBack},
	{Committing, Committed, Succeeded},
	{Committing, Errored, RollingBack},
	{RollingBack, Reverted, RolledBack},
	{Succeeded, Reported, Idle},
	{Failed, Reported, Idle},
	{RolledBack, Reported, Idle},

	// Give-up transitions, taken when the step counter shows the agent has
	// been restarted too often in one state (a crash or reboot loop).
	{Checking, GaveUp, Failed},
	{Writing, GaveUp, Failed},
	{Verifying, GaveUp, Failed},
	{Arming, GaveUp, RollingBack},
	{Rebooting, GaveUp, RollingBack},
	{Testing, GaveUp, RollingBack},
	{Committing, GaveUp, RollingBack},
	{RollingBack, GaveUp, Failed},
}

// next returns the state Event takes s to, or an error naming the missing
// transition: a bug, never a device condition.
func next(s State, e Event) (State, error) {
	for _, t := range Transitions {
		if t.From == s && t.Event == e {
			return t.To, nil
		}
	}
	return "", fmt.Errorf("update: no transition from %s on %s", s, e)
}

// Resume says, for each state, what a restarted agent does and why that is
// safe. The engine's resume code follows it; TestResumeTableCoversStates
// keeps it complete.
var Resume = map[State]string{
	Idle:        "send the last report again (the cut may have come before it was recorded); nothing else is in progress.",
	Checking:    "check again: checking has no side effects, only reads.",
	Writing:     "continue at the last checkpointed chunk of each image: a checkpoint is persisted only after the slot was fsynced up to it, and the bytes after it are rewritten. A checkpoint resets the step counter: restarts that make progress are not a loop.",
	Verifying:   "read the slot back again from the start: reading is idempotent.",
	Arming:      "arm again: writing the same bootloader variables twice is idempotent, and the redundant environment makes each write all-or-nothing.",
	Rebooting:   "if the boot id is the one recorded when the bootloader was armed, the reboot has not happened: reboot again; otherwise see which slot booted.",
	Testing:     "run the health checks again: they have no side effects; the step counter ends a loop of crashes or reboots during them.",
	Committing:  "commit again: writing the same bootloader variables twice is idempotent.",
	RollingBack: "if the boot id is the one recorded when the rollback was armed, revert and reboot again; otherwise the old slot is running: done.",
	Succeeded:   "report the outcome again: the outbox drops an event whose sequence number it already holds.",
	Failed:      "report the outcome again: the outbox drops an event whose sequence number it already holds.",
	RolledBack:  "report the outcome again: the outbox drops an event whose sequence number it already holds.",
}

// PastPointOfNoReturn reports whether the bootloader may already boot the
// new slot in state s: then a failure must roll back, not just stop.
func PastPointOfNoReturn(s State) bool {
	switch s {
	case Arming, Rebooting, Testing, Committing, RollingBack:
		return true
	}
	return false
}

// Mermaid draws the transition table as a Mermaid state diagram: the
// drawing in STATES.md.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	b.WriteString("    [*] --> idle\n")
	for _, t := range Transitions {
		fmt.Fprintf(&b, "    %s --> %s : %s\n", t.From, t.To, t.Event)
	}
	return b.String()
}
