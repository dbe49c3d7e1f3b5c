package rollout

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

func TestApply(t *testing.T) {
	before := t0.Add(-1)
	tests := []struct {
		name       string
		from       State
		cmd        Event
		note       string
		want       State
		wantReason string // exact; "" for unchanged
		wantErr    error
		wantAccept bool
	}{
		{name: "pause an active rollout", from: Active, cmd: Pause, note: "alice: looking at wave 1", want: Paused, wantReason: "paused by an operator: alice: looking at wave 1"},
		{name: "pause a complete rollout", from: Complete, cmd: Pause, want: Paused, wantReason: "paused by an operator"},
		{name: "pause a paused rollout", from: Paused, cmd: Pause, want: Paused},
		{name: "pause a halted rollout", from: Halted, cmd: Pause, want: Halted, wantErr: ErrTransition},
		{name: "pause an aborted rollout", from: Aborted, cmd: Pause, want: Aborted, wantErr: ErrTransition},
		{name: "resume a paused rollout", from: Paused, cmd: Resume, want: Active, wantReason: "resumed by an operator from paused"},
		{name: "resume a halted rollout", from: Halted, cmd: Resume, want: Active, wantAccept: true, wantReason: "resumed by an operator from halted, excusing the failures so far"},
		{name: "resume an aborted rollout", from: Aborted, cmd: Resume, want: Active, wantReason: "resumed by an operator from aborted"},
		{name: "resume an active rollout", from: Active, cmd: Resume, want: Active},
		{name: "resume a complete rollout", from: Complete, cmd: Resume, want: Complete},
		{name: "abort an active rollout", from: Active, cmd: Abort, want: Aborted, wantReason: "aborted by an operator; devices keep what they run"},
		{name: "abort a paused rollout", from: Paused, cmd: Abort, want: Aborted, wantReason: "aborted by an operator; devices keep what they run"},
		{name: "abort a halted rollout", from: Halted, cmd: Abort, want: Aborted, wantReason: "aborted by an operator; devices keep what they run"},
		{name: "abort a complete rollout", from: Complete, cmd: Abort, want: Aborted, wantReason: "aborted by an operator; devices keep what they run"},
		{name: "abort an aborted rollout", from: Aborted, cmd: Abort, want: Aborted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := at(1, tt.from, before)
			got, err := Apply(cur, tt.cmd, t0, tt.note)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply: %v, want %v", err, tt.wantErr)
			}
			if got.State != tt.want {
				t.Errorf("state %s, want %s", got.State, tt.want)
			}
			if got.AcceptFailures != tt.wantAccept {
				t.Errorf("accept failures %v, want %v", got.AcceptFailures, tt.wantAccept)
			}
			if tt.wantReason == "" {
				if !got.equal(cur) {
					t.Errorf("rollout changed to %+v, want unchanged", got)
				}
				return
			}
			if got.Reason != tt.wantReason {
				t.Errorf("reason %q, want %q", got.Reason, tt.wantReason)
			}
			if !got.Since.Equal(t0) || !got.WaveStarted.Equal(before) || got.Wave != 1 {
				t.Errorf("since %v, wave %d started %v; want since %v, wave and its start unchanged", got.Since, got.Wave, got.WaveStarted, t0)
			}
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name string
		cur  Rollout
		cmd  Event
		want string
	}{
		{"no rollout yet", Rollout{}, Pause, `pause rollout: the channel has no rollout (state "")`},
		{"not a command", at(0, Active, t0), Advance, `apply "advance" to the rollout: not an operator command (pause, resume or abort)`},
		{"pause a halted rollout", at(0, Halted, t0), Pause, "pause rollout of 1.4.0: pause a rollout that is halted: not allowed in this state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Apply(tt.cur, tt.cmd, t0, ""); err == nil || err.Error() != tt.want {
				t.Errorf("Apply: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestResumeFromHaltExcusesFailures resumes a halted rollout and checks that
// the failures seen at the next step are excused, and later ones are not.
func TestResumeFromHaltExcusesFailures(t *testing.T) {
	ch := testChannel(testPolicy)
	devices := in(0, confirmed, confirmed, confirmed, failed(1), idle)
	res, err := Evaluate(ch, at(0, Active, t0.Add(-2*time.Hour)), devices, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rollout.State != Halted {
		t.Fatalf("state %s, want halted", res.Rollout.State)
	}
	resumed, err := Apply(res.Rollout, Resume, t0.Add(1), "bad power supply on one board")
	if err != nil {
		t.Fatal(err)
	}
	res, err = Evaluate(ch, resumed, devices, t0.Add(2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Rollout.State, Active; got != want {
		t.Fatalf("state %s after resuming, want %s (%s)", got, want, res.Rollout.Reason)
	}
	if got, want := res.Rollout.Wave, 1; got != want {
		t.Errorf("wave %d, want %d: the wave's gate is open once the failure is excused", got, want)
	}
	if got := res.Rollout.Excused; len(got) != 3 || got[0] != 1 || res.Rollout.AcceptFailures {
		t.Errorf("excused %v, accept %v; want [1 0 0], false", got, res.Rollout.AcceptFailures)
	}
	// Two new failures: 2 counted of 5 finished is above 20 %.
	devices[4] = failed(1)(devices[4].ID)
	devices[0] = failed(1)(devices[0].ID)
	res, err = Evaluate(ch, res.Rollout, devices, t0.Add(3))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Rollout.State, Halted; got != want {
		t.Errorf("state %s after a new failure, want %s", got, want)
	}
}

func TestStateWire(t *testing.T) {
	tests := []struct {
		s    State
		want gitfleetv1.RolloutState
	}{
		{Active, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE},
		{Complete, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE},
		{Paused, gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED},
		{Halted, gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED},
		{Aborted, gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED},
		{"", gitfleetv1.RolloutState_ROLLOUT_STATE_UNSPECIFIED},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			if got := tt.s.Wire(); got != tt.want {
				t.Errorf("Wire() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	seen := map[[2]string]bool{}
	for _, tr := range Transitions {
		if !tr.From.Valid() || !tr.To.Valid() {
			t.Errorf("transition %+v names an unknown state", tr)
		}
		k := [2]string{string(tr.From), string(tr.Event)}
		if seen[k] {
			t.Errorf("two transitions from %s on %s", tr.From, tr.Event)
		}
		seen[k] = true
		if tr.To == Halted && tr.Event != Halt {
			t.Errorf("%+v: only Evaluate's halt enters halted", tr)
		}
		if tr.From == Halted && tr.Event != Resume && tr.Event != Abort {
			t.Errorf("%+v: only an operator leaves halted", tr)
		}
	}
}

func TestRolloutDiagramMatchesTable(t *testing.T) {
	const begin, end = "```mermaid\n", "```\n"
	doc, err := os.ReadFile("ROLLOUT.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i := strings.Index(text, begin)
	if i < 0 {
		t.Fatal("ROLLOUT.md has no mermaid block")
	}
	i += len(begin)
	j := strings.Index(text[i:], end)
	if j < 0 {
		t.Fatal("ROLLOUT.md's mermaid block does not end")
	}
	got, want := text[i:i+j], Mermaid()
	if got == want {
		return
	}
	if os.Getenv("GITFLEET_ROLLOUT_GOLDEN") == "1" {
		if err := os.WriteFile("ROLLOUT.md", []byte(text[:i]+want+text[i+j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("ROLLOUT.md's diagram differs from Transitions; run GITFLEET_ROLLOUT_GOLDEN=1 go test ./server/rollout/ -run Diagram\ngot:\n%s\nwant:\n%s", got, want)
}
