// Package outbox is the agent's on-disk queue of device events: what the
// update engine reports, kept until the MQTT broker has acknowledged it.
//
// An Outbox implements update.Reporter. Report turns an update.Report into
// a gitfleet.v1 DeviceEvent and records it durably — its own file, fsynced,
// renamed into place, the directory fsynced — before it returns, and drops a
// report whose (stream, sequence) it already holds or has delivered, since
// the engine sends its last report again after a restart. Run publishes the
// recorded events one at a time, in order, at QoS 1 on
// gitfleet/v1/<fleet>/devices/<device>/events, and removes each only after
// the broker's PUBACK; on failure it waits and sends the same event again.
// So no event is lost to a broker restart, a network loss, an agent crash
// or a power cut, and the server, which keeps the highest sequence per
// stream, drops the duplicates a resend can make.
//
// The outbox never drops an unacknowledged event to make room: past its
// disk budget Report fails with ErrFull. FORMAT.md beside this file gives
// the on-disk format and why a power cut at any byte leaves it readable.
package outbox
