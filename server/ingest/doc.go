// Package ingest stores what a fleet's devices report over MQTT: their
// statuses and their events, into the fleet database.
//
// An Ingest subscribes to the fleet's status and event topics in a shared
// subscription group, so that server replicas of one group split the fleet's
// messages. Each message goes through the protocol's checks (proto/README.md,
// "Reading a message"): the topic parses as one of the fleet's, the payload
// decodes and validates, and the device it names is its topic's — a device
// reporting as another is refused and counted (Counts.Mismatched), whatever
// the broker's ACL let through.
//
// Statuses are snapshots. They are stored in batches, one transaction for
// the statuses waiting when a batch starts, by a few writers, each device's
// by one; of several statuses of one device in a batch only the latest by
// the device's clock is written (the others are Counts.Superseded), and the
// store writes none older than the one it holds (Counts.Stale), so a status
// delivered late — to another replica, or again after a reconnect — does not
// take the place of a newer one. A last will (online false and nothing else)
// only marks the device offline.
//
// Events are a log. Each is appended to its device's stream
// (store.AppendEvents), which tells a duplicate — a QoS 1 redelivery or an
// outbox resend, dropped — from the next event, one after a gap (the events
// in between are counted missing) and a late one that fills a gap. One
// worker stores each device's events, in the order they came, in batches as
// statuses are: every event is kept, each judged against those before it. An event that
// records a failed attempt at a release (rollout.FailedAttempt) adds one to
// the device's failures of that release, by bundle digest, for the penalty
// box.
//
// A message is acknowledged once it is stored, so that on a persistent
// session a replica that dies first loses nothing: the broker delivers it
// again, and the store drops what it has. A broker lets a client have only
// so many messages unacknowledged (Mosquitto's max_inflight_messages, 20 by
// default), so the larger that window, the larger the batches: set it to a
// few thousand for the server's account on a large fleet. Should the store
// fail for about a minute, the messages are acknowledged anyway, dropped and
// counted (Counts.StoreErrors): devices send their status again at their
// next heartbeat, and dropped events show as a gap.
//
// Counts gives every counter (gitfleet-server serves them on /metrics as
// gitfleet_ingest_*); Config.OnUpdate tells the rollout controller which
// device just reported.
package ingest
