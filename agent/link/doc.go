// Package link is the agent's MQTT connection to the gitfleet server, through
// any broker (Mosquitto, EMQX, HiveMQ, or the server's embedded one).
//
// A Link keeps one persistent session (clean session off, the device id as
// client id) over tcp:// or ssl:// with optional mutual TLS, and reconnects
// after a loss with a capped, jittered backoff so that a fleet does not
// return in lockstep. Its last will, retained at QoS 1 on
// gitfleet/v1/<fleet>/devices/<device>/status, marks the device offline;
// while connected it publishes the device's status there, retained, on
// change and every heartbeat. Publish sends a message at QoS 1 and returns
// once the broker acknowledged it: the outbox sends the device's events
// through it.
//
// The link subscribes to the device's channel and desired topics, and
// trusts nothing it receives before checking it in the order proto/README.md
// gives: the topic, the SignedMessage envelope, the signatures (a threshold
// of the trusted root's timestamp keys), the ChannelState or DesiredState
// inside, that it names the topic it arrived on, that it has not expired,
// and that its sequence is above the last accepted on that topic — kept on
// disk, so a restart does not reopen the door to a replay. Accepted states
// go to Handlers.State; each refusal is logged in one line with its wire
// error code. Reaches says whether a channel's rollout wave includes the
// device.
//
// The agent wires it so: the outbox's sender publishes through the Link,
// Handlers.State starts the update engine's Install for a state that
// Reaches the device and names a release it should run, and the engine
// reports to the outbox.
package link
