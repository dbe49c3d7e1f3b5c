package rollout

import (
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Release is the release Git wants a channel to run: the one its fleet.yaml
// names, as the server built it.
type Release struct {
	// Version is the release's semantic version, e.g. "1.4.0".
	Version string

	// Digest is the bundle digest ("sha256:..."): what identifies the release
	// to the rollout and what devices report running.
	Digest string

	// Commit is the Git commit of the release's signed tag: its revision, as
	// devices report it in DeviceStatus.commit.
	Commit string
}

// Device is what the rollout needs to know of one device following the
// channel: its latest full DeviceStatus (a last will only clears Online),
// what the store counted of its failures of the channel's release, and the
// override the server publishes to it. DeviceFromStatus fills the status
// part.
type Device struct {
	ID     string
	Online bool

	// Version, Digest, Commit and Slot describe the release in the booted
	// slot; Confirmed is DeviceStatus.boot_confirmed.
	Version   string
	Digest    string
	Commit    string
	Slot      string
	Confirmed bool

	// UpdateState is the agent's update state ("idle", "writing",
	// "rolled_back", ...), TargetDigest the bundle digest of the release it
	// is installing, and LastError the code of the error that ended its
	// latest update.
	UpdateState  string
	TargetDigest string
	LastError    gitfleetv1.ErrorCode

	// Failures is how many times the device failed the channel's release (by
	// its digest): the count the store keeps from events FailedAttempt
	// accepts, and clears when an operator lets the device out of the
	// penalty box.
	Failures int
	// LastFailure is when the device last failed the release (zero for
	// none), from which Policy.RetryAfter counts.
	LastFailure time.Time
	// RetriedAt is the Failures count at which the server last ordered the
	// device to retry the release (ACTION_RETRY), and Retried whether it
	// did since its failures were last cleared.
	RetriedAt int
	Retried   bool

	// Override is the action of the DesiredState the server now publishes
	// to the device: ACTION_UNSPECIFIED or ACTION_NONE when it follows its
	// channel. Boxed reports whether that override is the penalty box's
	// ACTION_CANCEL rather than an operator's.
	Override gitfleetv1.Action
	Boxed    bool
}

// DeviceFromStatus returns the Device a DeviceStatus describes, with no
// failures and no override: the caller adds those from the store.
func DeviceFromStatus(st *gitfleetv1.DeviceStatus) Device {
	return Device{
		ID:           st.GetDeviceId(),
		Online:       st.GetOnline(),
		Version:      st.GetVersion(),
		Digest:       st.GetBundleDigest(),
		Commit:       st.GetCommit(),
		Slot:         st.GetBootedSlot(),
		Confirmed:    st.GetBootConfirmed(),
		UpdateState:  st.GetUpdateState(),
		TargetDigest: st.GetTargetBundleDigest(),
		LastError:    st.GetLastError().GetCode(),
	}
}

// The agent's outcome states for an update that did not take (agent/update's
// Failed and RolledBack), as DeviceStatus.update_state and
// DeviceEvent.to_state name them.
const (
	agentFailed     = "failed"
	agentRolledBack = "rolled_back"
)

// IsFailure reports whether an update that ended with code counts as a
// failure of the release it tried to install. Every code does but three,
// which say nothing about the release: ERROR_CODE_CANCELLED (an operator or an
// aborted rollout stopped it), ERROR_CODE_BUSY (another update was running)
// and ERROR_CODE_DOWNGRADE (the device already runs a later release). An
// outcome without a code is a failure.
func IsFailure(code gitfleetv1.ErrorCode) bool {
	switch code {
	case gitfleetv1.ErrorCode_ERROR_CODE_CANCELLED,
		gitfleetv1.ErrorCode_ERROR_CODE_BUSY,
		gitfleetv1.ErrorCode_ERROR_CODE_DOWNGRADE:
		return false
	}
	return true
}

// FailedAttempt reports whether ev records a failed attempt at installing
// the release with digest ev.BundleDigest: the agent reached the outcome
// "failed" or "rolled_back" with an error IsFailure counts. The ingest adds
// one to the device's failures of that release for each such event (once:
// events are deduplicated by sequence number before).
func FailedAttempt(ev *gitfleetv1.DeviceEvent) bool {
	switch ev.GetToState() {
	case agentFailed, agentRolledBack:
	default:
		return false
	}
	if ev.GetFromState() == ev.GetToState() || ev.GetBundleDigest() == "" {
		return false
	}
	return IsFailure(ev.GetError().GetCode())
}

// Phase is where a device stands in the rollout of a release.
type Phase string

// The phases of a device, in the order classify decides them.
const (
	// Overridden: an operator's override (pin, rollback, cancel) stands; the
	// device does not follow the channel and the rollout leaves it out of
	// its counts.
	Overridden Phase = "overridden"
	// Confirmed: the device runs the release and confirmed a healthy boot
	// of it. Only this phase counts towards advancing and completing.
	Confirmed Phase = "confirmed"
	// Failed: the device failed the release (Failures > 0, or its status
	// shows a failed or rolled-back outcome for it) and does not run it
	// confirmed, even while it tries again.
	Failed Phase = "failed"
	// InProgress: the device is installing the release, or runs it without
	// having confirmed it ("installed" is never "confirmed").
	InProgress Phase = "in_progress"
	// NotStarted: anything else, such as a device still running another
	// release, older or newer, or one the wave has not reached.
	NotStarted Phase = "not_started"
)

// operatorOverride reports whether d's override is an operator's, one that
// takes it out of the channel.
func (d *Device) operatorOverride() bool {
	switch d.Override {
	case gitfleetv1.Action_ACTION_UNSPECIFIED, gitfleetv1.Action_ACTION_NONE, gitfleetv1.Action_ACTION_RETRY:
		return false // a retry order is the penalty box's, and the device follows its channel
	}
	return !d.Boxed
}

// classify returns d's phase in the rollout of the release with digest.
func (d *Device) classify(digest string) Phase {
	running := d.Digest == digest
	switch {
	case d.operatorOverride():
		return Overridden
	case running && d.Confirmed:
		return Confirmed
	case d.Failures > 0 || d.statusFailed(digest):
		return Failed
	case running || d.TargetDigest == digest && !d.outcome():
		return InProgress
	}
	return NotStarted
}

// outcome reports whether d's update state is an unsuccessful outcome.
func (d *Device) outcome() bool {
	return d.UpdateState == agentFailed || d.UpdateState == agentRolledBack
}

// statusFailed reports whether d's status shows it failed the release with
// digest, before the ingest counted the event that says so.
func (d *Device) statusFailed(digest string) bool {
	return d.outcome() && d.TargetDigest == digest && IsFailure(d.LastError)
}
