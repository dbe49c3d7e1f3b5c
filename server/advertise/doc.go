// Package advertise publishes what a fleet's devices act on: each channel's
// ChannelState and each device override's DesiredState, retained on their
// topics, inside SignedMessages signed by the online keys of the trust root's
// timestamp role, and keeps them fresh.
//
// # Expiry and refresh
//
// Every state expires Config.Lifetime (an hour by default) after it is
// issued, and the advertiser republishes it, with a new sequence, when 40 to
// 50% of that remains. A device that hears nothing fresh for a whole
// lifetime knows it is being frozen (ERROR_CODE_EXPIRED) rather than
// believing there is no update. Replicas draw their point in that window at
// random: the first republishes, the others see its message and stand down.
//
// # Sequence numbers
//
// A device rejects a state whose sequence is below the last it accepted on
// the topic, so sequences must grow across restarts and across replicas.
// The sequence is the issue time in nanoseconds since the Unix epoch, raised
// if need be above every sequence the advertiser has issued or seen on the
// broker. Time grows across restarts and is the same on every replica
// without a shared counter or a write to the database on each refresh;
// seeing the broker's retained states covers a clock that is behind another
// replica's or stepped back, as long as the broker kept them. Clocks must be
// synchronized anyway, since devices compare expiry with theirs. A sequence
// from a database counter would also survive a broker that lost everything
// and a clock stepped back together, at the cost of a write per refresh; the
// fleet database has no such counter now.
//
// # What the broker holds
//
// Run subscribes to the fleet's channel and desired topics without sharing,
// so it receives every retained state. A state signed by one of the
// advertiser's keys becomes the state of its topic if its sequence is the
// highest seen, and the advertiser keeps it fresh as if it had published it:
// after a restart, the states the broker kept (Mosquitto with persistence,
// or the embedded broker's data directory) are refreshed without the server
// having to publish them again, and so are those another replica published.
// The server still sets each channel's state from fleet.yaml and the rollout
// when it starts, and deletes those it no longer has.
//
// # Deleting and lifting
//
// Lifting an override is a signed DesiredState with ACTION_NONE, which the
// advertiser keeps fresh like any other state; only a lifted override can be
// deleted (DeleteDesired), so that no device misses the lift. Deleting clears
// the retained message with an empty one, which devices ignore. Pausing and
// aborting a rollout are channel states with ROLLOUT_STATE_PAUSED and
// ROLLOUT_STATE_ABORTED (SetRolloutState): signed and sequenced like any
// other, so a device hears them and no one can forge them.
package advertise
