// Package broker is gitfleet-server's embedded MQTT broker (mochi-mqtt), which
// a server on one machine runs instead of Mosquitto, EMQX or HiveMQ, and the
// Mosquitto ACL that gives an external broker the same rules.
//
// # Who may connect
//
// On the password listener (Config.Addr, 127.0.0.1:1883 by default) a client
// signs in with an account of the password file. The file is Mosquitto's:
// one "NAME:HASH" line per account, as mosquitto_passwd writes it
// (mosquitto_passwd -c -b FILE device-1 SECRET), so one file serves the
// embedded broker and Mosquitto alike. The hashes read are "$7$"
// (PBKDF2-HMAC-SHA512, mosquitto_passwd 2.0; HashPassword makes them), "$6$"
// (salted SHA-512, mosquitto_passwd 1.x) and bcrypt ("$2y$...", htpasswd -B);
// a plain-text password is refused, even for a demo, since a file of secrets
// in clear is what gets copied around. A device's password must be a random
// secret of 128 bits or more, so that a cheap hash is as safe as a slow one
// and a whole fleet reconnecting costs seconds of CPU. The file is read again
// when it changes, so a new device needs no restart.
//
// On the mutual-TLS listener (Config.TLSAddr with ClientCAFile) a client
// presents a certificate signed by the device CA, and the certificate's
// common name is its identity, whatever username it sends — Mosquitto's
// use_identity_as_username. The server's account is never taken from a
// certificate.
//
// Every account but Config.ServerUser is a device, and its name is its device
// id. A device connects with its id as client id, so that no device can take
// over another's session, and with a last will only on a topic it may publish
// to.
//
// # What a device may do
//
// In each fleet of Config.Fleets, a device publishes only to its own status
// and events topics and subscribes only to the fleet's channel topics and its
// own desired topic, spelled out: exactly topic.CheckDevicePublish and
// topic.CheckDeviceSubscribe. The server's account may do anything, and so
// may the broker's inline client, through which the server in the same
// process publishes and subscribes (Broker.Server, fleetmq.NewInline).
// A forbidden subscription gets a refusal in its SUBACK; a forbidden QoS 1
// publish ends an MQTT 3.1.1 connection (MQTT 5 gets a refusing PUBACK).
// Mosquitto, with the ACL RenderMosquittoACL writes, grants the subscription
// and drops the publish silently; either way the message reaches no one.
//
// # What the broker keeps
//
// The retained channel and desired states — the server's signed messages,
// one per channel and per device override — are kept in Config.DataDir
// (RetainedFile), rewritten atomically at each change, and are back as soon
// as New returns, before any client, inline or not, subscribes. The advertiser republishes them
// anyway, with a higher sequence, well before they expire; keeping them spares
// devices that reconnect first a moment without them, and keeps overrides
// that only the broker holds. Devices' statuses, which the agent publishes
// retained, and their last wills are not retained at all: the server in the
// same process hears each one as it comes, the fleet database keeps the last,
// and mochi-mqtt looks at every retained message once a second, which for a
// whole fleet's statuses costs a core. Sessions live in memory: after a
// restart a device's persistent session starts afresh and the agent
// subscribes again, as it does on every connection.
package broker
