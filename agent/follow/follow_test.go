package follow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/follow"
	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/update"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

var (
	dev = follow.Device{Fleet: "acme", ID: "gw-1", Type: "acme-gw-v2"}
	old = update.Release{Version: "1.3.0", Counter: 13, Digest: "sha256:13"}
	r14 = &gitfleetv1.Release{Version: "1.4.0", Counter: 14, BundleDigest: "sha256:14", DeviceTypes: []string{"acme-gw-v2"}}
	r12 = &gitfleetv1.Release{Version: "1.2.0", Counter: 12, BundleDigest: "sha256:12"}
)

func channel(rel *gitfleetv1.Release, rs gitfleetv1.RolloutState) link.State {
	return link.State{Channel: &gitfleetv1.ChannelState{Fleet: "acme", Channel: "production", Release: rel,
		Wave: &gitfleetv1.Wave{Threshold: 10000}, RolloutState: rs}}
}

func desired(seq uint64, a gitfleetv1.Action, rel *gitfleetv1.Release) link.State {
	return link.State{Desired: &gitfleetv1.DesiredState{Fleet: "acme", DeviceId: "gw-1", Sequence: seq, Action: a, Release: rel}}
}

func open(t *testing.T, path string) *follow.Follower {
	t.Helper()
	f, err := follow.Open(path, dev)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func accept(t *testing.T, f *follow.Follower, s link.State) {
	t.Helper()
	if err := f.Accept(s); err != nil {
		t.Fatal(err)
	}
}

func installs(t *testing.T, f *follow.Follower, j update.Journal) string {
	t.Helper()
	s, err := f.Next(j)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rollback {
		return "rollback"
	}
	return s.Install.GetVersion()
}

// TestStandingOverrideSurvivesRestart: a cancel keeps the device from its
// channel's release, also after a restart that no broker replays the cancel
// to; the lift (ACTION_NONE) lets it follow the channel again.
func TestStandingOverrideSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "follow.json")
	idle := update.Journal{State: update.Idle, Installed: old}
	f := open(t, path)
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE))
	if got := installs(t, f, idle); got != "1.4.0" {
		t.Fatalf("active channel of 1.4.0: Next = %q, want 1.4.0", got)
	}
	accept(t, f, desired(1, gitfleetv1.Action_ACTION_CANCEL, nil))
	// A channel state after the cancel does not replace it.
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE))
	if got := installs(t, f, idle); got != "" || !f.Cancels() {
		t.Fatalf("cancel standing: Next = %q, Cancels = %t; want nothing, true", got, f.Cancels())
	}

	// Restart: only the channel state comes again.
	f = open(t, path)
	if got := f.Desired().GetAction(); got != gitfleetv1.Action_ACTION_CANCEL {
		t.Fatalf("after a restart the standing desired state is %v, want ACTION_CANCEL", got)
	}
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE))
	if got := installs(t, f, idle); got != "" || !f.Cancels() {
		t.Fatalf("cancel standing after a restart: Next = %q, Cancels = %t; want nothing, true", got, f.Cancels())
	}

	accept(t, f, desired(2, gitfleetv1.Action_ACTION_NONE, nil))
	if got := installs(t, f, idle); got != "1.4.0" || f.Cancels() {
		t.Fatalf("after the lift: Next = %q, Cancels = %t; want 1.4.0, false", got, f.Cancels())
	}
	if got := open(t, path).Desired().GetAction(); got != gitfleetv1.Action_ACTION_NONE {
		t.Errorf("after the lift and a restart the standing action is %v, want ACTION_NONE", got)
	}
}

// TestNext walks the install decision's cases.
func TestNext(t *testing.T) {
	idle := update.Journal{State: update.Idle, Installed: old}
	failed := idle
	failed.LastResult = &update.Outcome{State: update.RolledBack, Release: update.Release{Digest: r14.GetBundleDigest()}}
	cancelled := idle
	cancelled.LastResult = &update.Outcome{State: update.Failed, Release: update.Release{Digest: r14.GetBundleDigest()},
		Error: &update.Failure{Code: "ERROR_CODE_CANCELLED"}}
	wrongType := &gitfleetv1.Release{Version: "1.4.0", Counter: 14, BundleDigest: "sha256:14", DeviceTypes: []string{"other"}}
	active, paused, aborted := gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE, gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED, gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED
	for _, tc := range []struct {
		name    string
		states  []link.State
		j       update.Journal
		want    string
		cancels bool
	}{
		{"nothing accepted", nil, idle, "", false},
		{"active channel", []link.State{channel(r14, active)}, idle, "1.4.0", false},
		{"paused channel", []link.State{channel(r14, paused)}, idle, "", false},
		{"aborted channel cancels", []link.State{channel(r14, aborted)}, idle, "", true},
		{"busy", []link.State{channel(r14, active)}, update.Journal{State: update.Writing, Installed: old}, "", false},
		{"runs it", []link.State{channel(r14, active)}, update.Journal{State: update.Idle, Installed: update.Release{Counter: 14, Digest: "sha256:14"}}, "", false},
		{"older", []link.State{channel(r12, active)}, idle, "", false},
		{"other device type", []link.State{channel(wrongType, active)}, idle, "", false},
		{"failed here last", []link.State{channel(r14, active)}, failed, "", false},
		{"cancelled here last", []link.State{channel(r14, active)}, cancelled, "1.4.0", false},
		{"pin of what failed", []link.State{desired(1, gitfleetv1.Action_ACTION_PIN, r14)}, failed, "1.4.0", false},
		{"pin over an aborted channel", []link.State{channel(r14, aborted), desired(1, gitfleetv1.Action_ACTION_PIN, r14)}, idle, "1.4.0", false},
		{"pin of an older release", []link.State{desired(1, gitfleetv1.Action_ACTION_PIN, r12)}, idle, "", false},
		{"rollback on trial", []link.State{channel(r14, active), desired(1, gitfleetv1.Action_ACTION_ROLLBACK, nil)}, update.Journal{State: update.Testing, Installed: old}, "rollback", false},
		{"rollback standing, idle", []link.State{channel(r14, active), desired(1, gitfleetv1.Action_ACTION_ROLLBACK, nil)}, idle, "", false},
	} {
		f := open(t, filepath.Join(t.TempDir(), "follow.json"))
		for _, s := range tc.states {
			accept(t, f, s)
		}
		if got := installs(t, f, tc.j); got != tc.want {
			t.Errorf("%s: Next = %q, want %q", tc.name, got, tc.want)
		}
		if got := f.Cancels(); got != tc.cancels {
			t.Errorf("%s: Cancels = %t, want %t", tc.name, got, tc.cancels)
		}
	}
}

// TestOpenDamaged names the file to delete.
func TestOpenDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "follow.json")
	if err := os.WriteFile(path, []byte{0xff, 0xff, 0xff}, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := follow.Open(path, dev)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a damaged file = %v, want an error naming %s", err, path)
	}
}

// TestRetryOncePerOrder: a release that failed here last is installed again
// only on the server's retry order, once per order, also across a restart.
func TestRetryOncePerOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "follow.json")
	failed := update.Journal{State: update.Idle, Installed: old,
		LastResult: &update.Outcome{State: update.RolledBack, Release: update.Release{Digest: r14.GetBundleDigest()}}}
	f := open(t, path)
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE))
	if got := installs(t, f, failed); got != "" {
		t.Fatalf("failed last, no order: Next = %q, want nothing", got)
	}
	accept(t, f, desired(1, gitfleetv1.Action_ACTION_RETRY, r12))
	if got := installs(t, f, failed); got != "" {
		t.Fatalf("retry order for another release: Next = %q, want nothing", got)
	}
	accept(t, f, desired(2, gitfleetv1.Action_ACTION_RETRY, r14))
	// Peek tells without using the order.
	for range 2 {
		if got := f.Peek(failed).Install.GetVersion(); got != "1.4.0" {
			t.Fatalf("retry order for 1.4.0: Peek = %q, want 1.4.0", got)
		}
	}
	if got := installs(t, f, failed); got != "1.4.0" {
		t.Fatalf("retry order for 1.4.0: Next = %q, want 1.4.0", got)
	}
	// It failed again: the same order does not make it try a third time,
	// in this run or the next.
	if got := installs(t, f, failed); got != "" {
		t.Fatalf("retry order used: Next = %q, want nothing", got)
	}
	f = open(t, path)
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE))
	if got := installs(t, f, failed); got != "" {
		t.Fatalf("retry order used, after a restart: Next = %q, want nothing", got)
	}
	accept(t, f, desired(3, gitfleetv1.Action_ACTION_RETRY, r14))
	if got := installs(t, f, failed); got != "1.4.0" {
		t.Fatalf("a new retry order: Next = %q, want 1.4.0", got)
	}
	// A retry order does not start what the rollout does not reach.
	accept(t, f, desired(4, gitfleetv1.Action_ACTION_RETRY, r14))
	accept(t, f, channel(r14, gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED))
	if got := installs(t, f, failed); got != "" {
		t.Fatalf("retry order, rollout paused: Next = %q, want nothing", got)
	}
}
