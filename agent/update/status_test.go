package update_test

import (
	"testing"

	"github.com/gitfleet/gitfleet/agent/update"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// TestJournalStatus checks what a device says of itself in three moments:
// writing an update, on trial in the new release, and back on the old one
// after a rollback.
func TestJournalStatus(t *testing.T) {
	old := update.Release{Version: "1.3.0", Tag: "v1.3.0", Commit: "c13", Digest: "sha256:13"}
	next := update.Release{Version: "1.4.0", Tag: "v1.4.0", Commit: "c14", Digest: "sha256:14"}
	progress := &update.Progress{Release: next, Done: 10, Total: 40}

	st := update.Journal{State: update.Writing, Installed: old, Update: progress}.Status()
	if st.GetVersion() != "1.3.0" || st.GetTargetVersion() != "1.4.0" || st.GetProgress().GetDoneBytes() != 10 || st.GetBootConfirmed() || st.GetHealth() != nil {
		t.Errorf("writing: %v", st)
	}
	st = update.Journal{State: update.Testing, Installed: old, Update: progress}.Status()
	if st.GetVersion() != "1.4.0" || st.GetCommit() != "c14" || st.GetBootConfirmed() {
		t.Errorf("on trial: %v, want the new release, unconfirmed", st)
	}
	rolledBack := &update.Outcome{State: update.RolledBack, Release: next, Error: &update.Failure{Code: "ERROR_CODE_ROLLED_BACK", Message: "health check failed"}}
	st = update.Journal{State: update.Idle, Installed: old, LastResult: rolledBack}.Status()
	if st.GetVersion() != "1.3.0" || !st.GetBootConfirmed() || !st.GetHealth().GetOk() || st.GetUpdateState() != "idle" ||
		st.GetLastError().GetCode() != gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK {
		t.Errorf("after the rollback: %v", st)
	}
}
