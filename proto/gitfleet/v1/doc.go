// Package gitfleetv1 holds the messages of gitfleet's MQTT protocol, version 1:
// the protobuf types generated from the .proto files beside this file (package
// gitfleet.v1), and the rules every peer applies to them.
//
// The server publishes ChannelState and DesiredState inside a SignedMessage;
// PAE gives the exact bytes its signatures cover. Devices publish DeviceStatus
// and DeviceEvent. Every message read off the wire goes through a Decode
// function, which bounds its size, unmarshals it and validates every field;
// MatchTopic then checks that it arrived on the topic it names. WaveBucket
// decides which devices a rollout wave reaches. ErrorCode is the project's one
// table of wire error codes, and ErrorOf turns a Go error into its wire form.
//
// Signing and verifying signatures happen elsewhere: this package defines
// what is signed, not who may sign it. The topic grammar is in package
// github.com/gitfleet/gitfleet/proto/topic, and proto/README.md describes the
// protocol: topics, QoS and retain flags, sequence numbers and error codes.
//
// The *.pb.go files are generated and committed; regenerate them with
// `make proto` (or go generate) after editing a .proto file.
package gitfleetv1

//go:generate bash ../../generate.sh
