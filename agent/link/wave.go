package link

import gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"

// Reaches reports whether the rollout cs describes may start on device in
// fleet: the rollout is active, and its wave includes the device's bucket
// (gitfleetv1.WaveBucket), which depends on nothing but fleet and device.
// A paused or aborted rollout reaches no device that has not started; what
// an update already under way does is the engine's decision, and so is
// whether cs's release is newer than the one the device runs.
func Reaches(fleet, device string, cs *gitfleetv1.ChannelState) bool {
	return cs.GetRolloutState() == gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE &&
		cs.GetWave().Includes(gitfleetv1.WaveBucket(fleet, device))
}
