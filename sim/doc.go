// Package sim simulates a fleet of gitfleet devices for load tests of a
// broker and a gitfleet-server.
//
// Each simulated device is a real MQTT client with its own id and the
// agent's own parts: agent/link (paho, a persistent session, the signed
// channel and desired state checks, accepted sequences on disk) and
// agent/update (the state machine with its journal on disk, bundle
// signature and chunk verification while writing and reading back) over a
// board in memory: two slot groups, a bootloader with U-Boot's boot-count
// convention, a boot id per power-on. What the agent's daemon adds, it
// does as the daemon does (cmd/gitfleet-agent, which no package exports):
// the install decision for an accepted state and the status published from
// the journal. Three things are simpler than on a device, each to keep a
// device small: events go straight to the broker at QoS 1 instead of
// through the on-disk outbox (a simulated device is never cut from power);
// a reboot keeps the MQTT connection; and the bundle is downloaded once per
// fleet, as from a CDN, then verified by every device (Fleet's bundles).
//
// A Fleet runs the devices; Storm makes them publish bursts of statuses;
// WaitRollout, WaitStored, Sink, Prober, Watch and Broker measure what the
// server, its API and the broker do meanwhile. cmd/gitfleet-sim drives them
// and bench/fleet.sh runs it against a real Mosquitto and gitfleet-server;
// docs/fleet-simulator.md says how to read the figures.
package sim
