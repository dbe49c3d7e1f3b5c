// Package rollout is gitfleet's rollout engine: pure, deterministic logic that
// takes one channel of a fleet — its policy, the release Git wants it to run,
// the persisted state of its rollout, the devices following it and the clock —
// and says what happens next: which wave to advertise, whether the rollout
// advances, halts or completes, which devices go to the penalty box and how
// far each device and the channel are from what Git says.
//
// The package does no I/O. The server's store persists Rollout between steps,
// its ingest fills Device from the latest DeviceStatus and the failure counts
// it records (FailedAttempt decides which events count), its advertiser
// publishes Result.Wave and Result.State in the channel's ChannelState and
// Result.Overrides as DesiredState messages, and its API applies operator
// commands with Apply. Evaluate is cheap enough to run every few seconds on a
// channel of 100,000 devices.
//
// Waves are cumulative thresholds in basis points: a device is in a wave when
// gitfleetv1.WaveBucket(fleet, id) is below the wave's threshold, exactly as
// the device decides for itself with (*gitfleetv1.Wave).Includes, so the
// server's counts and the devices' behaviour agree. ROLLOUT.md beside this
// file states the rules and draws the state machine; a golden test keeps the
// drawing equal to Transitions.
package rollout
