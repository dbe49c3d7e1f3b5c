package update

import (
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Status returns what the journal says of the device for its status: the
// update state, the release running (the new one while it runs on trial),
// the release an update is taking it to and its progress, whether the
// running release is confirmed, and the last update's error. A device
// idle on a committed release reports healthy, since the release passed
// its health checks; a caller with the checks' own results sets Health
// instead. The caller adds what the journal does not know: agent version,
// device type, channel, boot id and slots.
func (j Journal) Status() *gitfleetv1.DeviceStatus {
	st := &gitfleetv1.DeviceStatus{
		UpdateState: string(j.State),
		Version:     j.Installed.Version, Tag: j.Installed.Tag, Commit: j.Installed.Commit, BundleDigest: j.Installed.Digest,
		BootConfirmed: j.State == Idle,
	}
	if u := j.Update; u != nil {
		st.TargetVersion, st.TargetBundleDigest = u.Release.Version, u.Release.Digest
		st.Progress = &gitfleetv1.Progress{DoneBytes: uint64(u.Done), TotalBytes: uint64(u.Total)}
		if j.State == Testing || j.State == Committing {
			// The new release runs, on trial.
			st.Version, st.Tag, st.Commit, st.BundleDigest = u.Release.Version, u.Release.Tag, u.Release.Commit, u.Release.Digest
		}
	}
	if j.State == Idle && j.Installed.Digest != "" {
		st.Health = &gitfleetv1.Health{Ok: true}
	}
	if r := j.LastResult; r != nil && r.Error != nil {
		st.LastError = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode(gitfleetv1.ErrorCode_value[r.Error.Code]), Message: r.Error.Message}
	}
	return st
}
