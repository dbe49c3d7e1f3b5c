package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// A State is the state of a channel's rollout. Its name is what the store
// persists and the API shows.
type State string

// The states of a rollout. Paused and Aborted are entered only by an
// operator's command; Halted only by Evaluate, when a wave fails too often;
// Active and Complete by Evaluate or by resuming.
const (
	Active   State = "active"   // devices in the advertised wave may update
	Paused   State = "paused"   // an operator stopped new updates
	Aborted  State = "aborted"  // an operator stopped the rollout; devices keep what they run
	Halted   State = "halted"   // a wave's failure rate went above the policy's maximum
	Complete State = "complete" // the last wave is out and every device runs the release confirmed
)

// Valid reports whether s is one of the rollout states.
func (s State) Valid() bool {
	switch s {
	case Active, Paused, Aborted, Halted, Complete:
		return true
	}
	return false
}

// Wire returns the state devices see in ChannelState.rollout_state. Halted is
// sent as ROLLOUT_STATE_PAUSED: devices stop starting the update and need not
// know why; Complete is ROLLOUT_STATE_ACTIVE, so a device that joins the
// channel later still updates.
func (s State) Wire() gitfleetv1.RolloutState {
	switch s {
	case Active, Complete:
		return gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE
	case Paused, Halted:
		return gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED
	case Aborted:
		return gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED
	}
	return gitfleetv1.RolloutState_ROLLOUT_STATE_UNSPECIFIED
}

// An Event takes a rollout from one state to another. Pause, Resume and
// Abort are operators' commands, applied with Apply; the others are
// Evaluate's.
type Event string

// The events of a rollout.
const (
	Pause  Event = "pause"  // operator: stop devices from starting the update
	Resume Event = "resume" // operator: go on after a pause, a halt or an abort
	Abort  Event = "abort"  // operator: stop the rollout; devices keep what they run

	Advance Event = "advance" // Evaluate: the wave passed; advertise the next
	Finish  Event = "finish"  // Evaluate: every device runs the release confirmed
	Reopen  Event = "reopen"  // Evaluate: a device that does not run it joined
	Halt    Event = "halt"    // Evaluate: a wave's failure rate is above the maximum
)

// A Transition takes From to To on Event.
type Transition struct {
	From  State
	Event Event
	To    State
}

// Transitions is the whole state machine of a rollout, but for a new
// release, which starts a new rollout at wave 0 in Active from any state.
// Neither Evaluate nor Apply takes a transition that is not in this table.
var Transitions = []Transition{
	{Active, Advance, Active},
	{Active, Finish, Complete},
	{Complete, Reopen, Active},

	{Active, Halt, Halted},
	{Complete, Halt, Halted},
	{Paused, Halt, Halted},

	{Active, Pause, Paused},
	{Complete, Pause, Paused},
	{Paused, Resume, Active},
	{Halted, Resume, Active},
	{Aborted, Resume, Active},

	{Active, Abort, Aborted},
	{Complete, Abort, Aborted},
	{Paused, Abort, Aborted},
	{Halted, Abort, Aborted},
}

// ErrTransition is returned by Apply for a command the rollout's state does
// not allow, such as pausing a halted rollout. The API answers it with 409
// Conflict.
var ErrTransition = errors.New("not allowed in this state")

// next returns the state e takes s to, or ErrTransition.
func next(s State, e Event) (State, error) {
	for _, t := range Transitions {
		if t.From == s && t.Event == e {
			return t.To, nil
		}
	}
	return "", fmt.Errorf("%s a rollout that is %s: %w", e, s, ErrTransition)
}

// Rollout is the persisted state of a channel's rollout of one release.
// Evaluate reads it and returns the next one; the store keeps it between
// steps. The zero Rollout is a channel that never rolled anything out.
type Rollout struct {
	// Digest and Version name the release this rollout is of. A desired
	// release with another digest starts a new rollout.
	Digest  string
	Version string

	// Wave is the index in Policy.Waves of the wave now advertised.
	Wave int

	// State is the rollout's state, and Since when it entered it (or its
	// wave, when it advanced).
	State State
	Since time.Time

	// WaveStarted is when Wave was first advertised; the soak time counts
	// from it, pauses included, since devices keep running the release
	// meanwhile.
	WaveStarted time.Time

	// Reason says, for people, why the rollout is in its state: the last
	// transition's cause, such as
	// "halted: 3 of 20 devices in wave 2 (50%) failed (15.0% > max 10.0%)".
	Reason string

	// LastApplied is the Git commit of the last release whose rollout on the
	// channel completed, or "" before any did.
	LastApplied string

	// Excused counts, per wave, the failures an operator accepted by
	// resuming from Halted; the failure rate counts only the failures above
	// it. AcceptFailures is set by Resume from Halted: the next Evaluate
	// fills Excused with each reached wave's failures and clears it, so
	// resuming excuses what the operator saw, not failures that come after.
	Excused        []int
	AcceptFailures bool
}

// Apply returns r after the operator's command cmd (Pause, Resume or Abort)
// at now; note, such as "alice: bad batch of boards", goes into Reason. A
// command that finds the rollout already where it leads (pausing a paused
// rollout, resuming a complete one) returns r unchanged, so commands are
// idempotent. A command the state does not allow returns an error wrapping
// ErrTransition; one for a channel that has no rollout yet, or that is not
// a command, a plain error.
//
// Resuming is the only way out of Halted: it excuses the failures counted at
// the next Evaluate (see Rollout.Excused), so the rollout does not halt again
// at once on the failures the operator just reviewed.
func Apply(r Rollout, cmd Event, now time.Time, note string) (Rollout, error) {
	var target State
	switch cmd {
	case Pause:
		target = Paused
	case Resume:
		target = Active
	case Abort:
		target = Aborted
	default:
		return r, fmt.Errorf("apply %q to the rollout: not an operator command (pause, resume or abort)", cmd)
	}
	if !r.State.Valid() {
		return r, fmt.Errorf("%s rollout: the channel has no rollout (state %q)", cmd, r.State)
	}
	if r.State == target || (cmd == Resume && r.State == Complete) {
		return r, nil
	}
	to, err := next(r.State, cmd)
	if err != nil {
		return r, fmt.Errorf("%s rollout of %s: %w", cmd, r.Version, err)
	}
	out := r
	out.Excused = slices.Clone(r.Excused)
	if r.State == Halted && to == Active {
		out.AcceptFailures = true
	}
	out.State, out.Since = to, now
	out.Reason = commandReason(cmd, r.State, note)
	return out, nil
}

func commandReason(cmd Event, from State, note string) string {
	var s string
	switch cmd {
	case Pause:
		s = "paused by an operator"
	case Resume:
		s = "resumed by an operator from " + string(from)
		if from == Halted {
			s += ", excusing the failures so far"
		}
	case Abort:
		s = "aborted by an operator; devices keep what they run"
	}
	if note = strings.TrimSpace(note); note != "" {
		s += ": " + note
	}
	return s
}

// equal reports whether a and b are the same rollout state.
func (r Rollout) equal(o Rollout) bool {
	return r.Digest == o.Digest && r.Version == o.Version && r.Wave == o.Wave &&
		r.State == o.State && r.Since.Equal(o.Since) && r.WaveStarted.Equal(o.WaveStarted) &&
		r.Reason == o.Reason && r.LastApplied == o.LastApplied &&
		slices.Equal(r.Excused, o.Excused) && r.AcceptFailures == o.AcceptFailures
}

// Mermaid draws Transitions as a Mermaid state diagram: the drawing in
// ROLLOUT.md.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	b.WriteString("    [*] --> active : new release (from any state)\n")
	for _, t := range Transitions {
		fmt.Fprintf(&b, "    %s --> %s : %s\n", t.From, t.To, t.Event)
	}
	return b.String()
}
