package apiclient

import "time"

// Device is a device and the last status it reported.
type Device struct {
	ID           string `json:"id"`
	Fleet        string `json:"fleet"`
	DeviceType   string `json:"device_type"`
	Channel      string `json:"channel"`
	AgentVersion string `json:"agent_version"`
	BootID       string `json:"boot_id"`
	// BootedSlot is the slot the device runs; ActiveSlot the one its
	// bootloader boots next.
	BootedSlot string `json:"booted_slot"`
	ActiveSlot string `json:"active_slot"`
	// Version, Tag, Commit and BundleDigest describe the release in
	// BootedSlot; Confirmed reports whether the device confirmed booting it.
	Version      string `json:"version"`
	Tag          string `json:"tag"`
	Commit       string `json:"commit"`
	BundleDigest string `json:"bundle_digest"`
	Confirmed    bool   `json:"confirmed"`
	// State is the agent's update state ("idle", "downloading", ...).
	State string `json:"state"`
	// Target is the release being installed, if any.
	Target *Target `json:"target,omitempty"`
	Health Health  `json:"health"`
	// Error is the error that ended the latest update, if it failed.
	Error  *DeviceError `json:"error,omitempty"`
	Online bool         `json:"online"`
	// Labels are the labels the device reports (agent.yaml device.labels),
	// which fleet.yaml's label selectors match; empty, never null, when it
	// reports none.
	Labels map[string]string `json:"labels"`
	// StatusTime is when the device took its status, by its own clock;
	// LastSeen when the server received it; FirstSeen when the server
	// received the device's first status.
	StatusTime time.Time `json:"status_time"`
	LastSeen   time.Time `json:"last_seen"`
	FirstSeen  time.Time `json:"first_seen"`
}

// Target is the release a device is installing and how many of its bytes
// it has.
type Target struct {
	Version      string `json:"version"`
	BundleDigest string `json:"bundle_digest"`
	DoneBytes    int64  `json:"done_bytes"`
	TotalBytes   int64  `json:"total_bytes"`
}

// Health is a device's health: OK when every check passed.
type Health struct {
	OK     bool          `json:"ok"`
	Checks []HealthCheck `json:"checks"`
}

// HealthCheck is the result of one of a device's health checks.
type HealthCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// DeviceError is an error a device reported: Code is a gitfleetv1.ErrorCode
// name.
type DeviceError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DevicePage is one page of the device list.
type DevicePage struct {
	Devices []Device `json:"devices"`
	// Next is the cursor of the next page, for DeviceQuery.After; empty on
	// the last page.
	Next string `json:"next,omitempty"`
}

// Event is one event of a device: a transition of its update state machine,
// or an error within a state.
type Event struct {
	DeviceID string `json:"device_id"`
	// StreamID and Sequence place the event in the device's event stream.
	StreamID string `json:"stream_id"`
	Sequence uint64 `json:"sequence"`
	BootID   string `json:"boot_id"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Version and BundleDigest name the release being installed, if any.
	Version      string       `json:"version,omitempty"`
	BundleDigest string       `json:"bundle_digest,omitempty"`
	DoneBytes    int64        `json:"done_bytes,omitempty"`
	TotalBytes   int64        `json:"total_bytes,omitempty"`
	Error        *DeviceError `json:"error,omitempty"`
	// Time is when the event happened, by the device's clock; Received when
	// the server stored it.
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
}

// EventPage is one page of a device's events, newest first.
type EventPage struct {
	Events []Event `json:"events"`
	// Next is the cursor of the next (older) page, for EventQuery.Before;
	// empty on the last page.
	Next string `json:"next,omitempty"`
}

// Release is a signed Git tag and the bundle built from it. Until its build
// succeeded only Tag, Provenance.Tag and Build are set.
type Release struct {
	// Version is the release's semantic version, without a "v".
	Version     string   `json:"version"`
	Counter     int64    `json:"counter"`
	Product     string   `json:"product"`
	DeviceTypes []string `json:"device_types"`
	// Provenance says where the release comes from in Git.
	Provenance Provenance `json:"provenance"`
	Bundle     Bundle     `json:"bundle"`
	// Objects maps what each stored object is ("bundle", "targets" ...) to
	// its key in object storage.
	Objects map[string]string `json:"objects"`
	Build   Build             `json:"build"`
}

// Provenance is the Git side of a release: its signed tag, the tag object,
// the commit it points at and the key that signed it.
type Provenance struct {
	Tag       string `json:"tag"`
	TagObject string `json:"tag_object"`
	Commit    string `json:"commit"`
	Signer    string `json:"signer"`
}

// Bundle is the firmware bundle of a release.
type Bundle struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Build is where the build of a release's tag stands: State is "building",
// "succeeded" or "failed".
type Build struct {
	State string `json:"state"`
	// Error is one line saying why a failed build failed; Log where its log
	// is kept (an object key).
	Error string `json:"error,omitempty"`
	Log   string `json:"log,omitempty"`
	// Created is when the tag was first claimed; Finished when its build
	// finished (zero until then).
	Created  time.Time  `json:"created"`
	Finished *time.Time `json:"finished,omitempty"`
}

// ReleaseList is every release, newest first.
type ReleaseList struct {
	Releases []Release `json:"releases"`
}

// Channel is a channel and the state of its rollout.
type Channel struct {
	Name string `json:"name"`
	// Release is the version the channel rolls out.
	Release string `json:"release"`
	// Wave is the index of the wave the rollout is at, from 0.
	Wave int `json:"wave"`
	// State is "ACTIVE", "PAUSED", "ABORTED" or "HALTED"; Reason says, for
	// people, why.
	State       string    `json:"state"`
	Reason      string    `json:"reason"`
	WaveStarted time.Time `json:"wave_started"`
	Updated     time.Time `json:"updated"`
	// Conditions (Ready, Progressing, Degraded, Halted) and Counts are the
	// rollout engine's latest evaluation of the channel, when the server
	// has one.
	Conditions []Condition `json:"conditions,omitempty"`
	Counts     *Counts     `json:"counts,omitempty"`
}

// Condition is one status condition of a channel: whether it holds, a
// CamelCase reason for programs and a message for people.
type Condition struct {
	Type    string `json:"type"`
	Status  bool   `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Counts counts a channel's devices by where they stand in its rollout.
type Counts struct {
	Targeted   int `json:"targeted"`
	Confirmed  int `json:"confirmed"`
	Failed     int `json:"failed"`
	InProgress int `json:"in_progress"`
	NotStarted int `json:"not_started"`
	Penalized  int `json:"penalized"`
	Offline    int `json:"offline"`
	Overridden int `json:"overridden"`
}

// ChannelList is every channel, by name.
type ChannelList struct {
	Channels []Channel `json:"channels"`
}

// Action is the body of a pause, resume or abort: why the operator acts.
type Action struct {
	Reason string `json:"reason,omitempty"`
}

// PenaltyClear is the body of a penalty clear: the release whose failures
// on the device to forget, and why.
type PenaltyClear struct {
	Release string `json:"release"`
	Reason  string `json:"reason,omitempty"`
}

// PromoteRequest is the body of a promotion: the version to promote.
type PromoteRequest struct {
	Version string `json:"version"`
}

// Promotion is a promotion done: the commit to fleet.yaml that sets
// Channel's release to Version.
type Promotion struct {
	Channel string `json:"channel"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// HookResult is the answer to an accepted webhook.
type HookResult struct {
	// Triggered reports whether the server polls the repository now.
	Triggered bool `json:"triggered"`
}

// Status is the answer of /healthz and /readyz: "ok", or "unavailable"
// with what failed in Checks.
type Status struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}
