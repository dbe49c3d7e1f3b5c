package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

func TestFailedAttempt(t *testing.T) {
	code := func(c gitfleetv1.ErrorCode) *gitfleetv1.Error { return &gitfleetv1.Error{Code: c, Message: "x"} }
	tests := []struct {
		name string
		ev   *gitfleetv1.DeviceEvent
		want bool
	}{
		{"rolled back", &gitfleetv1.DeviceEvent{FromState: "rolling_back", ToState: "rolled_back", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_HEALTH_CHECK_FAILED)}, true},
		{"rolled back by the bootloader", &gitfleetv1.DeviceEvent{FromState: "rebooting", ToState: "rolled_back", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK)}, true},
		{"failed to write", &gitfleetv1.DeviceEvent{FromState: "writing", ToState: "failed", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED)}, true},
		{"failed without a code", &gitfleetv1.DeviceEvent{FromState: "checking", ToState: "failed", BundleDigest: v140.Digest}, true},
		{"cancelled", &gitfleetv1.DeviceEvent{FromState: "writing", ToState: "failed", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED)}, false},
		{"busy", &gitfleetv1.DeviceEvent{FromState: "checking", ToState: "failed", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_BUSY)}, false},
		{"refused as a downgrade", &gitfleetv1.DeviceEvent{FromState: "checking", ToState: "failed", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_DOWNGRADE)}, false},
		{"succeeded", &gitfleetv1.DeviceEvent{FromState: "committing", ToState: "succeeded", BundleDigest: v140.Digest}, false},
		{"a step", &gitfleetv1.DeviceEvent{FromState: "writing", ToState: "verifying", BundleDigest: v140.Digest}, false},
		{"an error within the outcome", &gitfleetv1.DeviceEvent{FromState: "failed", ToState: "failed", BundleDigest: v140.Digest, Error: code(gitfleetv1.ErrorCode_ERROR_CODE_INTERNAL)}, false},
		{"no release named", &gitfleetv1.DeviceEvent{FromState: "writing", ToState: "failed", Error: code(gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailedAttempt(tt.ev); got != tt.want {
				t.Errorf("FailedAttempt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeviceFromStatus(t *testing.T) {
	st := &gitfleetv1.DeviceStatus{
		DeviceId: "dev-1", ProtocolVersion: 1, Time: timestamppb.New(t0), Online: true,
		BootedSlot: "b", ActiveSlot: "b", Version: v140.Version, Commit: v140.Commit, BundleDigest: v140.Digest,
		BootConfirmed: true, UpdateState: "idle", TargetBundleDigest: "",
		LastError: &gitfleetv1.Error{Code: gitfleetv1.ErrorCode_ERROR_CODE_TIMEOUT},
	}
	want := Device{ID: "dev-1", Online: true, Version: v140.Version, Digest: v140.Digest, Commit: v140.Commit,
		Slot: "b", Confirmed: true, UpdateState: "idle", LastError: gitfleetv1.ErrorCode_ERROR_CODE_TIMEOUT}
	if diff := cmp.Diff(want, DeviceFromStatus(st)); diff != "" {
		t.Errorf("DeviceFromStatus (-want +got):\n%s", diff)
	}
	lastWill := &gitfleetv1.DeviceStatus{DeviceId: "dev-1", ProtocolVersion: 1}
	if diff := cmp.Diff(Device{ID: "dev-1"}, DeviceFromStatus(lastWill)); diff != "" {
		t.Errorf("DeviceFromStatus(last will) (-want +got):\n%s", diff)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		d    Device
		want Phase
	}{
		{"confirmed", confirmed("d"), Confirmed},
		{"confirmed offline", offline(confirmed)("d"), Confirmed},
		{"installed, not confirmed", trial("d"), InProgress},
		{"installing", installing("d"), InProgress},
		{"runs the old release", idle("d"), NotStarted},
		{"runs a newer release", newer("d"), NotStarted},
		{"reports nothing", Device{ID: "d"}, NotStarted},
		{"failed once", failed(1)("d"), Failed},
		{"failed, trying again", with(installing, func(d *Device) { d.Failures = 1 })("d"), Failed},
		{"failed, installed again, not confirmed", with(trial, func(d *Device) { d.Failures = 1 })("d"), Failed},
		{"failed, then confirmed", with(confirmed, func(d *Device) { d.Failures = 2 })("d"), Confirmed},
		{"status shows a rollback", with(idle, rolledBack(gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK))("d"), Failed},
		{"status shows a cancelled update", with(idle, rolledBack(gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED))("d"), NotStarted},
		{"status shows a failure of another release", with(idle, func(d *Device) {
			d.UpdateState, d.TargetDigest, d.LastError = "failed", v150.Digest, gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE
		})("d"), NotStarted},
		{"pinned", with(newer, pin)("d"), Overridden},
		{"rolled back by an operator", with(idle, func(d *Device) { d.Override = gitfleetv1.Action_ACTION_ROLLBACK })("d"), Overridden},
		{"cancelled by an operator", with(idle, func(d *Device) { d.Override = gitfleetv1.Action_ACTION_CANCEL })("d"), Overridden},
		{"in the penalty box", with(failed(3), box)("d"), Failed},
		{"override lifted", with(idle, func(d *Device) { d.Override = gitfleetv1.Action_ACTION_NONE })("d"), NotStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.classify(v140.Digest); got != tt.want {
				t.Errorf("phase %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDeviceReport(t *testing.T) {
	type conds [4]string // "true Reason" or "false Reason" for Ready, Progressing, Degraded, Halted
	tests := []struct {
		name          string
		state         State
		wave          int // the rollout's wave
		d             Device
		wantPhase     Phase
		wantReached   bool
		wantPenalized bool
		want          conds
		wantApplied   string
		wantAttempted string
	}{
		{
			name: "confirmed", state: Active, d: confirmed(ids(0, 1)[0]),
			wantPhase: Confirmed, wantReached: true,
			want:        conds{"true Confirmed", "false Confirmed", "false NoFailures", "false NotHalted"},
			wantApplied: v140.Commit, wantAttempted: v140.Commit,
		},
		{
			name: "updating", state: Active, d: installing(ids(0, 1)[0]),
			wantPhase: InProgress, wantReached: true,
			want:        conds{"false Updating", "true Updating", "false NoFailures", "false NotHalted"},
			wantApplied: v130.Commit, wantAttempted: v140.Commit,
		},
		{
			name: "installed, not confirmed", state: Active, d: trial(ids(0, 1)[0]),
			wantPhase: InProgress, wantReached: true,
			want:        conds{"false Updating", "true Updating", "false NoFailures", "false NotHalted"},
			wantApplied: "", wantAttempted: v140.Commit,
		},
		{
			name: "waiting for its wave", state: Active, d: idle(ids(2, 1)[0]),
			wantPhase:   NotStarted,
			want:        conds{"false NotStarted", "false WaitingForWave", "false NoFailures", "false NotHalted"},
			wantApplied: v130.Commit, wantAttempted: v130.Commit,
		},
		{
			name: "offered", state: Active, d: idle(ids(0, 1)[0]),
			wantPhase: NotStarted, wantReached: true,
			want:        conds{"false NotStarted", "false Offered", "false NoFailures", "false NotHalted"},
			wantApplied: v130.Commit, wantAttempted: v130.Commit,
		},
		{
			name: "offline", state: Active, d: offline(idle)(ids(0, 1)[0]),
			wantPhase: NotStarted, wantReached: true,
			want:        conds{"false NotStarted", "false Offline", "false NoFailures", "false NotHalted"},
			wantApplied: v130.Commit, wantAttempted: v130.Commit,
		},
		{
			name: "failed", state: Active, d: failed(1)(ids(0, 1)[0]),
			wantPhase: Failed, wantReached: true,
			want:        conds{"false Failed", "false Failed", "true Failed", "false NotHalted"},
			wantApplied: v130.Commit, wantAttempted: v140.Commit,
		},
		{
			name: "in the penalty box", state: Active, d: failed(2)(ids(0, 1)[0]),
			wantPhase: Failed, wantReached: true, wantPenalized: true,
			want:        conds{"false Failed", "false PenaltyBox", "true PenaltyBox", "true PenaltyBox"},
			wantApplied: v130.Commit, wantAttempted: v140.Commit,
		},
		{
			name: "pinned", state: Active, d: with(newer, pin)(ids(0, 1)[0]),
			wantPhase: Overridden, wantReached: true,
			want:        conds{"false Overridden", "false Overridden", "false NoFailures", "true Overridden"},
			wantApplied: v150.Commit, wantAttempted: v150.Commit,
		},
		{
			name: "rollout halted before it updated", state: Halted, d: idle(ids(0, 1)[0]),
			wantPhase: NotStarted, wantReached: true,
			want:        conds{"false NotStarted", "false RolloutHalted", "false NoFailures", "true RolloutHalted"},
			wantApplied: v130.Commit, wantAttempted: v130.Commit,
		},
		{
			name: "rollout aborted while it updates", state: Aborted, d: installing(ids(0, 1)[0]),
			wantPhase: InProgress, wantReached: true,
			want:        conds{"false Updating", "true Updating", "false NoFailures", "true RolloutAborted"},
			wantApplied: v130.Commit, wantAttempted: v140.Commit,
		},
		{
			name: "rollout paused after it confirmed", state: Paused, d: confirmed(ids(0, 1)[0]),
			wantPhase: Confirmed, wantReached: true,
			want:        conds{"true Confirmed", "false Confirmed", "false NoFailures", "false NotHalted"},
			wantApplied: v140.Commit, wantAttempted: v140.Commit,
		},
	}
	// Failures never halt here, so each device is judged alone.
	tolerant := testPolicy
	tolerant.MaxFailureRate = 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Evaluate(testChannel(tolerant), at(tt.wave, tt.state, t0), []Device{tt.d}, t0)
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Device(tt.d)
			if rep.Phase != tt.wantPhase || rep.Reached != tt.wantReached || rep.Penalized != tt.wantPenalized {
				t.Errorf("phase %s, reached %v, penalized %v; want %s, %v, %v", rep.Phase, rep.Reached, rep.Penalized, tt.wantPhase, tt.wantReached, tt.wantPenalized)
			}
			var got conds
			for i, c := range rep.Conditions {
				got[i] = conditionString(c)
				if c.Message == "" && c.Reason != "NotHalted" {
					t.Errorf("condition %s %s has no message", c.Type, c.Reason)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if rep.LastAppliedRevision != tt.wantApplied || rep.LastAttemptedRevision != tt.wantAttempted {
				t.Errorf("revisions applied %q, attempted %q; want %q, %q", rep.LastAppliedRevision, rep.LastAttemptedRevision, tt.wantApplied, tt.wantAttempted)
			}
		})
	}
}

func conditionString(c Condition) string {
	if c.Status {
		return "true " + c.Reason
	}
	return "false " + c.Reason
}
