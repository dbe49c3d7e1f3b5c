package rollout

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

func TestEvaluate(t *testing.T) {
	soaked := t0.Add(-2 * time.Hour)
	fresh := t0.Add(-30 * time.Minute)
	bigSample := testPolicy
	bigSample.MinConfirmed = 10
	noSoak := testPolicy
	noSoak.WaveDuration = 0
	noMinimum := testPolicy
	noMinimum.MinConfirmed = 0
	twoWaves := testPolicy
	twoWaves.Waves = []float64{10, 100}

	tests := []struct {
		name    string
		policy  Policy // testPolicy when zero
		cur     Rollout
		devices []Device

		wantState  State
		wantWave   int
		wantReason string // exact; "" skips
		// wantProgressing is the channel's Progressing reason; "" skips.
		wantProgressing string
		check           func(t *testing.T, res *Result)
	}{
		{
			name:       "a first release starts at wave 0",
			devices:    in(0, idle, idle),
			wantState:  Active,
			wantWave:   0,
			wantReason: "rollout of 1.4.0 started at wave 0 (10%)",
			check: func(t *testing.T, res *Result) {
				if !res.Rollout.Since.Equal(t0) || !res.Rollout.WaveStarted.Equal(t0) {
					t.Errorf("since %v, wave started %v; want both %v", res.Rollout.Since, res.Rollout.WaveStarted, t0)
				}
			},
		},
		{
			name: "a promotion of another release restarts at wave 0",
			cur: Rollout{Digest: v130.Digest, Version: v130.Version, Wave: 2, State: Halted, Since: soaked,
				WaveStarted: soaked, LastApplied: v130.Commit, Excused: []int{1, 2, 3}},
			devices:    fleet(in(0, idle), in(2, idle)),
			wantState:  Active,
			wantWave:   0,
			wantReason: "rollout of 1.4.0 started at wave 0 (10%), replacing 1.3.0",
			check: func(t *testing.T, res *Result) {
				if got, want := res.Rollout.LastApplied, v130.Commit; got != want {
					t.Errorf("last applied %q, want %q kept", got, want)
				}
				if res.Rollout.Excused != nil {
					t.Errorf("excused %v carried into a new rollout", res.Rollout.Excused)
				}
				if got, want := res.LastAttemptedRevision, v140.Commit; got != want {
					t.Errorf("last attempted %q, want %q", got, want)
				}
			},
		},
		{
			name:       "a wave advances when confirmed, under the maximum and soaked",
			cur:        at(0, Active, soaked),
			devices:    fleet(in(0, confirmed, confirmed, confirmed, installing), in(1, idle)),
			wantState:  Active,
			wantWave:   1,
			wantReason: "advanced to wave 1 (50%): wave 0 (10%) had 3 confirmed (need 3), 0 of 3 (0.0%) failed, soaked 2h0m0s",
			check: func(t *testing.T, res *Result) {
				if got, want := res.Threshold, uint32(5000); got != want {
					t.Errorf("threshold %d, want %d", got, want)
				}
				if !res.Rollout.WaveStarted.Equal(t0) {
					t.Errorf("wave started %v, want %v", res.Rollout.WaveStarted, t0)
				}
				if !res.Waves[1].Reached {
					t.Error("wave 1 not reached after advancing to it")
				}
			},
		},
		{
			name:            "a wave waits for its soak time",
			cur:             at(0, Active, fresh),
			devices:         in(0, confirmed, confirmed, confirmed),
			wantState:       Active,
			wantWave:        0,
			wantReason:      "before",
			wantProgressing: "Soaking",
		},
		{
			name:            "installed but not confirmed never counts",
			cur:             at(0, Active, soaked),
			devices:         in(0, trial, trial, trial, confirmed),
			wantState:       Active,
			wantWave:        0,
			wantProgressing: "WaitingForConfirmations",
			check: func(t *testing.T, res *Result) {
				if got, want := res.Waves[0].InProgress, 3; got != want {
					t.Errorf("in progress %d, want %d", got, want)
				}
			},
		},
		{
			name:      "a wave smaller than min confirmed needs all its devices",
			cur:       at(0, Active, soaked),
			devices:   in(0, confirmed, confirmed),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:            "a small wave waits for its last device",
			cur:             at(0, Active, soaked),
			devices:         in(0, confirmed, installing),
			wantState:       Active,
			wantWave:        0,
			wantProgressing: "WaitingForConfirmations",
		},
		{
			name:            "an offline device stays in its wave, which waits for it",
			cur:             at(0, Active, soaked),
			devices:         in(0, confirmed, offline(idle)),
			wantState:       Active,
			wantWave:        0,
			wantProgressing: "WaitingForConfirmations",
			check: func(t *testing.T, res *Result) {
				if got, want := res.Waves[0].Offline, 1; got != want {
					t.Errorf("offline %d, want %d", got, want)
				}
			},
		},
		{
			name:      "an offline device that confirmed still counts",
			cur:       at(0, Active, soaked),
			devices:   in(0, offline(confirmed), confirmed),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:       "a wave with no devices advances after its soak time",
			cur:        at(0, Active, soaked),
			devices:    in(1, idle),
			wantState:  Active,
			wantWave:   1,
			wantReason: "advanced to wave 1 (50%): wave 0 (10%) had 0 confirmed (need 0), 0 of 0 (0.0%) failed, soaked 2h0m0s",
		},
		{
			name:            "a wave with no devices waits for its soak time",
			cur:             at(0, Active, fresh),
			devices:         in(1, idle),
			wantState:       Active,
			wantWave:        0,
			wantProgressing: "Soaking",
		},
		{
			name:            "a minimum of 0 still needs one confirmed boot",
			policy:          noMinimum,
			cur:             at(0, Active, soaked),
			devices:         in(0, installing, installing),
			wantState:       Active,
			wantWave:        0,
			wantProgressing: "WaitingForConfirmations",
		},
		{
			name:      "a minimum of 0 advances on one confirmed boot",
			policy:    noMinimum,
			cur:       at(0, Active, soaked),
			devices:   in(0, confirmed, installing),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:      "a wave advances one step at a time",
			policy:    noSoak,
			cur:       at(0, Active, t0),
			devices:   fleet(in(0, confirmed), in(1, confirmed), in(2, confirmed)),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:       "a failure rate above the maximum halts",
			cur:        at(0, Active, soaked),
			devices:    in(0, confirmed, confirmed, confirmed, failed(1), idle),
			wantState:  Halted,
			wantWave:   0,
			wantReason: "halted: 1 of 4 devices in wave 0 (10%) failed (25.0% > max 20.0%)",
			check: func(t *testing.T, res *Result) {
				if got, want := res.State(), gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED; got != want {
					t.Errorf("wire state %v, want %v", got, want)
				}
				if c := condition(res.Conditions, ConditionHalted); !c.Status || c.Reason != "FailureRate" || c.Message != res.Rollout.Reason {
					t.Errorf("Halted condition %+v, want true, FailureRate, the rollout's reason", c)
				}
				if c := condition(res.Conditions, ConditionDegraded); !c.Status {
					t.Errorf("Degraded condition %+v, want true", c)
				}
			},
		},
		{
			name:      "a failure rate at the maximum does not halt",
			cur:       at(0, Active, soaked),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, failed(1)),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:       "a zero maximum halts on the first failure",
			policy:     Policy{Waves: []float64{100}, MinConfirmed: 1, PenaltyAfter: 1},
			cur:        at(0, Active, soaked),
			devices:    fleet(in(0, times(9, confirmed)...), in(1, failed(1))),
			wantState:  Halted,
			wantReason: "halted: 1 of 10 devices in wave 0 (100%) failed (10.0% > max 0.0%)",
		},
		{
			name:      "an early failure in a big wave is counted over the minimum sample",
			policy:    bigSample,
			cur:       at(0, Active, fresh),
			devices:   in(0, append([]kind{failed(1)}, times(19, installing)...)...),
			wantState: Active,
			wantWave:  0,
		},
		{
			name:       "failures without successes halt before the sample is full",
			policy:     bigSample,
			cur:        at(0, Active, fresh),
			devices:    in(0, append(times(3, failed(1)), times(17, installing)...)...),
			wantState:  Halted,
			wantReason: "halted: 3 devices in wave 0 (10%) failed with 3 finished (30.0% of the minimum sample of 10 > max 20.0%)",
		},
		{
			name:       "a failure in an earlier wave halts at any time",
			cur:        at(1, Active, fresh),
			devices:    fleet(in(0, confirmed, confirmed, failed(1)), in(1, confirmed)),
			wantState:  Halted,
			wantWave:   1,
			wantReason: "halted: 1 of 3 devices in wave 0 (10%) failed (33.3% > max 20.0%)",
		},
		{
			name:      "failures in a wave not reached yet do not halt",
			cur:       at(0, Active, fresh),
			devices:   fleet(in(0, confirmed), in(1, failed(1), failed(1))),
			wantState: Active,
		},
		{
			name:       "a status showing a rollback counts before its event is ingested",
			cur:        at(0, Active, fresh),
			devices:    in(0, confirmed, confirmed, with(idle, rolledBack(gitfleetv1.ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED))),
			wantState:  Halted,
			wantReason: "halted: 1 of 3 devices in wave 0 (10%) failed (33.3% > max 20.0%)",
		},
		{
			name:      "a cancelled update is not a failure",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, with(idle, rolledBack(gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED))),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if got, want := res.Waves[0].NotStarted, 1; got != want {
					t.Errorf("not started %d, want %d", got, want)
				}
			},
		},
		{
			name:      "a device that failed and then confirmed counts as confirmed",
			cur:       at(0, Active, soaked),
			devices:   in(0, confirmed, confirmed, with(confirmed, func(d *Device) { d.Failures = 1 })),
			wantState: Active,
			wantWave:  1,
		},
		{
			name:      "a device that failed counts as failed while it tries again",
			cur:       at(0, Active, soaked),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, with(installing, func(d *Device) { d.Failures = 1 })),
			wantState: Active,
			wantWave:  1,
			check: func(t *testing.T, res *Result) {
				if got, want := res.Waves[0].Failed, 1; got != want {
					t.Errorf("failed %d, want %d", got, want)
				}
			},
		},
		{
			name:            "a paused rollout does not advance",
			cur:             at(0, Paused, soaked),
			devices:         in(0, confirmed, confirmed, confirmed),
			wantState:       Paused,
			wantReason:      "before",
			wantProgressing: "Paused",
			check: func(t *testing.T, res *Result) {
				if res.Changed {
					t.Error("changed, want unchanged")
				}
				if got, want := res.State(), gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED; got != want {
					t.Errorf("wire state %v, want %v", got, want)
				}
			},
		},
		{
			name:      "a paused rollout halts on failures",
			cur:       at(0, Paused, soaked),
			devices:   in(0, confirmed, failed(1)),
			wantState: Halted,
		},
		{
			name:       "a halted rollout stays halted when its failures are cleared",
			cur:        at(0, Halted, soaked),
			devices:    in(0, confirmed, confirmed, confirmed),
			wantState:  Halted,
			wantReason: "before",
		},
		{
			name:       "an aborted rollout offers nothing new and does not halt",
			cur:        at(0, Aborted, soaked),
			devices:    in(0, confirmed, confirmed, confirmed, failed(1), failed(1)),
			wantState:  Aborted,
			wantReason: "before",
			check: func(t *testing.T, res *Result) {
				if got, want := res.State(), gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED; got != want {
					t.Errorf("wire state %v, want %v", got, want)
				}
				if c := condition(res.Conditions, ConditionHalted); !c.Status || c.Reason != "Aborted" {
					t.Errorf("Halted condition %+v, want true, Aborted", c)
				}
				if got, want := res.Waves[0].Confirmed, 3; got != want {
					t.Errorf("confirmed %d, want %d: devices keep what they run and are reported", got, want)
				}
			},
		},
		{
			name: "failures excused by resuming do not halt again",
			cur: func() Rollout {
				r := at(0, Active, soaked)
				r.Excused = []int{1, 0, 0}
				return r
			}(),
			devices:   in(0, confirmed, confirmed, confirmed, failed(1)),
			wantState: Active,
			wantWave:  1,
		},
		{
			name: "a failure after the excused ones halts again",
			cur: func() Rollout {
				r := at(0, Active, fresh)
				r.Excused = []int{1, 0, 0}
				return r
			}(),
			devices:    in(0, confirmed, confirmed, failed(1), failed(1)),
			wantState:  Halted,
			wantReason: "halted: 1 of 4 devices in wave 0 (10%) failed (25.0% > max 20.0%); 1 earlier failed and were excused",
		},
		{
			name:       "the last wave completes when every device runs the release confirmed",
			cur:        at(2, Active, fresh),
			devices:    fleet(in(0, confirmed), in(1, confirmed), in(2, confirmed, offline(confirmed))),
			wantState:  Complete,
			wantWave:   2,
			wantReason: "complete: every device runs 1.4.0 confirmed (4 devices)",
			check: func(t *testing.T, res *Result) {
				if got, want := res.LastAppliedRevision, v140.Commit; got != want {
					t.Errorf("last applied %q, want %q", got, want)
				}
				if c := condition(res.Conditions, ConditionReady); !c.Status || c.Reason != "Complete" {
					t.Errorf("Ready condition %+v, want true, Complete", c)
				}
				if c := condition(res.Conditions, ConditionProgressing); c.Status {
					t.Errorf("Progressing condition %+v, want false", c)
				}
			},
		},
		{
			name:            "the last wave does not complete with a device installed but not confirmed",
			cur:             at(2, Active, soaked),
			devices:         fleet(in(0, confirmed), in(2, confirmed, trial)),
			wantState:       Active,
			wantWave:        2,
			wantProgressing: "Converging",
		},
		{
			name:            "a device running a newer release is not started and keeps the rollout open",
			cur:             at(2, Active, soaked),
			devices:         fleet(in(0, confirmed), in(2, confirmed, newer)),
			wantState:       Active,
			wantWave:        2,
			wantProgressing: "Converging",
			check: func(t *testing.T, res *Result) {
				if got, want := res.Waves[2].NotStarted, 1; got != want {
					t.Errorf("not started %d, want %d", got, want)
				}
			},
		},
		{
			name:       "a device an operator pinned is left out of the rollout",
			cur:        at(2, Active, soaked),
			devices:    fleet(in(0, confirmed), in(2, confirmed, with(newer, pin))),
			wantState:  Complete,
			wantReason: "complete: every device runs 1.4.0 confirmed (2 devices)",
			wantWave:   2,
			check: func(t *testing.T, res *Result) {
				if got, want := res.Total.Overridden, 1; got != want {
					t.Errorf("overridden %d, want %d", got, want)
				}
			},
		},
		{
			name:       "a complete rollout reopens when a device joins",
			cur:        at(2, Complete, soaked),
			devices:    fleet(in(0, confirmed), in(2, confirmed, idle)),
			wantState:  Active,
			wantWave:   2,
			wantReason: "reopened: 1 of 3 devices do not run 1.4.0 confirmed",
		},
		{
			name:       "a complete rollout halts when a device that joined fails",
			cur:        at(2, Complete, soaked),
			devices:    fleet(in(0, confirmed), in(2, confirmed, failed(1))),
			wantState:  Halted,
			wantWave:   2,
			wantReason: "halted: 1 of 2 devices in wave 2 (100%) failed (50.0% > max 20.0%)",
		},
		{
			name:      "a complete rollout stays complete",
			cur:       at(2, Complete, soaked),
			devices:   fleet(in(0, confirmed), in(2, confirmed)),
			wantState: Complete,
			wantWave:  2,
			check: func(t *testing.T, res *Result) {
				if res.Changed {
					t.Error("changed, want unchanged")
				}
			},
		},
		{
			name:       "an empty channel completes at the last wave",
			cur:        at(2, Active, fresh),
			wantState:  Complete,
			wantWave:   2,
			wantReason: "complete: every device runs 1.4.0 confirmed (0 devices)",
			check: func(t *testing.T, res *Result) {
				if got, want := condition(res.Conditions, ConditionReady).Message, "no device follows the channel"; got != want {
					t.Errorf("Ready message %q, want %q", got, want)
				}
			},
		},
		{
			name:            "an empty channel does not complete before the last wave",
			cur:             at(1, Active, fresh),
			wantState:       Active,
			wantWave:        1,
			wantProgressing: "Soaking",
		},
		{
			name:       "a policy that lost waves puts the rollout at its last wave",
			policy:     twoWaves,
			cur:        at(2, Active, fresh),
			devices:    fleet(in(0, confirmed), in(2, confirmed)),
			wantState:  Complete,
			wantWave:   1,
			wantReason: "complete: every device runs 1.4.0 confirmed (2 devices)",
		},
		{
			name:      "penalty box: a device that failed K times is boxed",
			cur:       at(0, Active, fresh),
			devices:   fleet(in(0, confirmed, confirmed, confirmed, confirmed, failed(2)), in(1, failed(2))),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				boxed := ids(0, 5)[4]
				if diff := cmp.Diff([]string{boxed, ids(1, 1)[0]}, res.Penalized); diff != "" {
					t.Errorf("penalized (-want +got):\n%s", diff)
				}
				want := []Override{
					{DeviceID: boxed, Action: gitfleetv1.Action_ACTION_CANCEL, Reason: "penalty box: failed 1.4.0 2 times (limit 2)"},
					{DeviceID: ids(1, 1)[0], Action: gitfleetv1.Action_ACTION_CANCEL, Reason: "penalty box: failed 1.4.0 2 times (limit 2)"},
				}
				if diff := cmp.Diff(want, res.Overrides); diff != "" {
					t.Errorf("overrides (-want +got):\n%s", diff)
				}
				if got, want := res.Waves[0].Penalized, 1; got != want {
					t.Errorf("wave 0 penalized %d, want %d", got, want)
				}
			},
		},
		{
			name: "penalty box: a policy without a limit boxes after 3 failures",
			policy: func() Policy {
				p := testPolicy
				p.PenaltyAfter, p.MaxFailureRate = 0, 1
				return p
			}(),
			cur:       at(0, Active, fresh),
			devices:   in(0, failed(2), failed(3)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if diff := cmp.Diff([]string{ids(0, 2)[1]}, res.Penalized); diff != "" {
					t.Errorf("penalized (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:      "penalty box: a device failed fewer than K times is not boxed but ordered to retry",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, failed(1)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if len(res.Penalized) != 0 || len(res.Overrides) != 1 || res.Overrides[0].Action != gitfleetv1.Action_ACTION_RETRY ||
					res.Overrides[0].DeviceID != ids(0, 5)[4] {
					t.Errorf("penalized %v, overrides %v; want none, a retry of %s", res.Penalized, res.Overrides, ids(0, 5)[4])
				}
			},
		},
		{
			name:      "penalty box: a retry is ordered once per failure",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, with(failed(1), func(d *Device) { d.Retried, d.RetriedAt = true, 1 })),
			wantState: Active,
			check:     wantNoOverrides,
		},
		{
			name:      "penalty box: a retry waits for the backoff after the last failure",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, with(failed(1), func(d *Device) { d.LastFailure = t0.Add(-DefaultRetryAfter + time.Second) })),
			wantState: Active,
			check:     wantNoOverrides,
		},
		{
			name:      "penalty box: no retry while the rollout is paused",
			cur:       at(0, Paused, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, failed(1)),
			wantState: Paused,
			check:     wantNoOverrides,
		},
		{
			name:      "penalty box: a boxed device is not told again",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, confirmed, with(failed(3), box)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if len(res.Penalized) != 1 || len(res.Overrides) != 0 {
					t.Errorf("penalized %v, overrides %v; want one, none", res.Penalized, res.Overrides)
				}
			},
		},
		{
			name:      "penalty box: a cleared device leaves the box",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, with(idle, box)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				want := []Override{{DeviceID: ids(0, 2)[1], Action: gitfleetv1.Action_ACTION_RETRY, Reason: "out of the penalty box for 1.4.0"}}
				if diff := cmp.Diff(want, res.Overrides); diff != "" {
					t.Errorf("overrides (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:      "penalty box: a new release lets boxed devices out",
			cur:       Rollout{Digest: v130.Digest, Version: v130.Version, Wave: 2, State: Active},
			devices:   in(0, with(idle, box)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if len(res.Overrides) != 1 || res.Overrides[0].Action != gitfleetv1.Action_ACTION_RETRY {
					t.Errorf("overrides %v, want one ACTION_RETRY", res.Overrides)
				}
			},
		},
		{
			name:      "penalty box: an operator's override is never replaced",
			cur:       at(0, Active, fresh),
			devices:   in(0, confirmed, confirmed, confirmed, with(failed(5), pin)),
			wantState: Active,
			check: func(t *testing.T, res *Result) {
				if len(res.Penalized) != 0 || len(res.Overrides) != 0 {
					t.Errorf("penalized %v, overrides %v; want none", res.Penalized, res.Overrides)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p.Waves == nil {
				p = testPolicy
			}
			res, err := Evaluate(testChannel(p), tt.cur, tt.devices, t0)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			r := res.Rollout
			if r.State != tt.wantState || r.Wave != tt.wantWave {
				t.Errorf("state %s at wave %d, want %s at wave %d (reason %q)", r.State, r.Wave, tt.wantState, tt.wantWave, r.Reason)
			}
			if tt.wantReason != "" && r.Reason != tt.wantReason {
				t.Errorf("reason:\n got %q\nwant %q", r.Reason, tt.wantReason)
			}
			if tt.wantProgressing != "" {
				if c := condition(res.Conditions, ConditionProgressing); c.Reason != tt.wantProgressing {
					t.Errorf("Progressing %+v, want reason %s", c, tt.wantProgressing)
				}
			}
			if got, want := res.Changed, !r.equal(tt.cur); got != want {
				t.Errorf("changed %v, want %v", got, want)
			}
			if got, want := res.Wave().GetThreshold(), res.Threshold; got != want {
				t.Errorf("advertised threshold %d, want %d", got, want)
			}
			if got, want := res.Threshold, uint32(p.Waves[r.Wave]*100); got != want {
				t.Errorf("threshold %d, want %d for wave %d", got, want, r.Wave)
			}
			checkCounts(t, res, len(tt.devices))
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

// checkCounts checks that res counts every device once.
func checkCounts(t *testing.T, res *Result, devices int) {
	t.Helper()
	var sum Counts
	for _, w := range res.Waves {
		if got := w.Confirmed + w.Failed + w.InProgress + w.NotStarted; got != w.Targeted {
			t.Errorf("wave %d: phases add up to %d, targeted %d", w.Index, got, w.Targeted)
		}
		sum.Targeted += w.Targeted
		sum.Overridden += w.Overridden
	}
	if got := sum.Targeted + sum.Overridden; got != devices {
		t.Errorf("waves count %d devices, want %d", got, devices)
	}
	if sum.Targeted != res.Total.Targeted {
		t.Errorf("waves target %d devices, total %d", sum.Targeted, res.Total.Targeted)
	}
	if got := len(res.Conditions); got != 4 {
		t.Errorf("%d channel conditions, want 4", got)
	}
}

func rolledBack(code gitfleetv1.ErrorCode) func(*Device) {
	return func(d *Device) {
		d.UpdateState, d.TargetDigest, d.LastError = "rolled_back", v140.Digest, code
	}
}

func pin(d *Device) { d.Override = gitfleetv1.Action_ACTION_PIN }

func box(d *Device) { d.Override, d.Boxed = gitfleetv1.Action_ACTION_CANCEL, true }

func TestEvaluateErrors(t *testing.T) {
	bad := testPolicy
	bad.MaxFailureRate = 2
	noFleet := testChannel(testPolicy)
	noFleet.Fleet = ""
	noRelease := testChannel(testPolicy)
	noRelease.Release = Release{}
	tests := []struct {
		name string
		ch   Channel
		cur  Rollout
		want string
	}{
		{"invalid policy", testChannel(bad), Rollout{}, "evaluate channel production: rollout policy: max failure rate: 2 is not between 0 and 1 (0.05 is 5 %)"},
		{"no fleet", noFleet, Rollout{}, "evaluate channel production: no fleet"},
		{"no release", noRelease, Rollout{}, "evaluate channel production: no release digest"},
		{"unknown state", testChannel(testPolicy), at(0, "stuck", t0), `evaluate channel production: rollout of 1.4.0: unknown state "stuck"`},
		{"negative wave", testChannel(testPolicy), at(-1, Active, t0), "evaluate channel production: rollout of 1.4.0: wave -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Evaluate(tt.ch, tt.cur, nil, t0)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestEvaluateUsesProtocolBuckets checks that a device is counted in the
// wave the device itself would compute with the protocol's functions.
func TestEvaluateUsesProtocolBuckets(t *testing.T) {
	var ds []Device
	for i := range 2000 {
		ds = append(ds, idle("unit-"+strconv.Itoa(i)))
	}
	res, err := Evaluate(testChannel(testPolicy), at(1, Active, t0), ds, t0)
	if err != nil {
		t.Fatal(err)
	}
	advert := res.Wave()
	var reached int
	for _, d := range ds {
		if advert.Includes(gitfleetv1.WaveBucket(testFleet, d.ID)) {
			reached++
		}
		rep := res.Device(d)
		if got, want := rep.Reached, advert.Includes(rep.Bucket); got != want {
			t.Fatalf("device %s: reached %v, but the advertised wave includes it: %v", d.ID, got, want)
		}
	}
	if got := res.Waves[0].Targeted + res.Waves[1].Targeted; got != reached {
		t.Errorf("waves 0 and 1 target %d devices, the advert reaches %d", got, reached)
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	ds := fleet(in(0, confirmed, failed(2), installing, trial), in(1, idle, newer, with(idle, box)), in(2, with(newer, pin)))
	cur := at(1, Active, t0.Add(-time.Hour))
	a, err := Evaluate(testChannel(testPolicy), cur, slices.Clone(ds), t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(testChannel(testPolicy), cur, slices.Clone(ds), t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b, cmp.AllowUnexported(Result{}, Channel{}), cmp.Comparer(func(x, y *gitfleetv1.Wave) bool {
		return x.GetIndex() == y.GetIndex() && x.GetThreshold() == y.GetThreshold()
	})); diff != "" {
		t.Errorf("two evaluations differ (-first +second):\n%s", diff)
	}
}

// wantNoOverrides is a check that the step publishes no desired state.
func wantNoOverrides(t *testing.T, res *Result) {
	if len(res.Overrides) != 0 {
		t.Errorf("overrides %v; want none", res.Overrides)
	}
}
