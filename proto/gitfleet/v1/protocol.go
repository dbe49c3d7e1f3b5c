package gitfleetv1

import (
	"fmt"

	"github.com/gitfleet/gitfleet/proto/topic"
	"google.golang.org/protobuf/proto"
)

// ProtocolVersion is the version of the gitfleet MQTT protocol this package
// speaks. Devices send it in DeviceStatus.protocol_version; it is also the
// "v1" of the topic prefix and of the payload types. Adding fields keeps the
// version; a change that old peers would misread bumps it.
const ProtocolVersion = 1

// MaxMessageSize is the largest MQTT payload, in bytes, that a gitfleet peer
// decodes. Decode functions refuse larger payloads before parsing them, and a
// publisher must keep what it sends within it.
const MaxMessageSize = 128 << 10

// message is a wire message that can check its own fields.
type message interface {
	proto.Message
	Validate() error
}

// DecodeDeviceStatus decodes and validates b, the payload of an MQTT message
// on a status topic.
func DecodeDeviceStatus(b []byte) (*DeviceStatus, error) {
	m := new(DeviceStatus)
	if err := decode(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeDeviceEvent decodes and validates b, the payload of an MQTT message on
// an events topic.
func DecodeDeviceEvent(b []byte) (*DeviceEvent, error) {
	m := new(DeviceEvent)
	if err := decode(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// decode bounds, unmarshals and validates b into m. Unknown fields are kept,
// so a newer peer's additions pass through an older one.
func decode(b []byte, m message) error {
	name := messageName(m)
	if len(b) > MaxMessageSize {
		return WithCode(ErrorCode_ERROR_CODE_OVERSIZED,
			fmt.Errorf("decode %s: %d bytes, over the limit of %d", name, len(b), MaxMessageSize))
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return WithCode(ErrorCode_ERROR_CODE_MALFORMED_MESSAGE, fmt.Errorf("decode %s: %w", name, err))
	}
	return m.Validate()
}

// messageName returns the short protobuf name of m, e.g. "ChannelState".
func messageName(m proto.Message) string {
	return string(m.ProtoReflect().Descriptor().Name())
}

// MatchTopic returns an error unless m may arrive on t: t is of the kind that
// carries m, and the fleet, channel or device that m names is the one in t.
// Checking it stops a validly signed message for one channel or device from
// being replayed on another's topic, and a device from reporting as another.
func MatchTopic(t topic.Topic, m proto.Message) error {
	var want topic.Topic
	switch m := m.(type) {
	case *ChannelState:
		want = topic.Topic{Kind: topic.KindChannel, Fleet: m.GetFleet(), Channel: m.GetChannel()}
	case *DesiredState:
		want = topic.Topic{Kind: topic.KindDesired, Fleet: m.GetFleet(), Device: m.GetDeviceId()}
	case *DeviceStatus:
		want = topic.Topic{Kind: topic.KindStatus, Fleet: t.Fleet, Device: m.GetDeviceId()}
	case *DeviceEvent:
		want = topic.Topic{Kind: topic.KindEvents, Fleet: t.Fleet, Device: m.GetDeviceId()}
	default:
		return fmt.Errorf("match topic %s: %T is not a gitfleet wire message", t, m)
	}
	if t != want {
		return WithCode(ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
			fmt.Errorf("%s for %q arrived on %q", messageName(m), want, t))
	}
	return nil
}
