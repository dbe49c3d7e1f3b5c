package topic

import (
	"errors"
	"fmt"
	"strings"
)

// Prefix begins every gitfleet topic: the project, then the protocol version.
// A protocol change that breaks old devices gets a new prefix.
const Prefix = "gitfleet/v1/"

// Kind is what a topic carries.
type Kind uint8

// The kinds of topic, in the order of the grammar in the package doc.
const (
	// KindChannel is gitfleet/v1/<fleet>/channels/<channel>: a signed
	// ChannelState, retained, from the server to every device of the channel.
	KindChannel Kind = iota + 1

	// KindDesired is gitfleet/v1/<fleet>/devices/<device>/desired: a signed
	// DesiredState, retained, from the server to one device.
	KindDesired

	// KindStatus is gitfleet/v1/<fleet>/devices/<device>/status: a
	// DeviceStatus, retained, from one device to the server.
	KindStatus

	// KindEvents is gitfleet/v1/<fleet>/devices/<device>/events: DeviceEvents
	// at QoS 1 from one device to the server.
	KindEvents
)

// deviceLeaves maps the last level of a device topic to its kind.
var deviceLeaves = map[string]Kind{
	"desired": KindDesired,
	"status":  KindStatus,
	"events":  KindEvents,
}

// String returns the kind's name as it appears in the package doc: the last
// level of its topics, or "channel".
func (k Kind) String() string {
	switch k {
	case KindChannel:
		return "channel"
	case KindDesired:
		return "desired"
	case KindStatus:
		return "status"
	case KindEvents:
		return "events"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// isDevice reports whether topics of kind k address one device.
func (k Kind) isDevice() bool {
	return k == KindDesired || k == KindStatus || k == KindEvents
}

// Topic is what a gitfleet topic name addresses.
type Topic struct {
	Kind  Kind
	Fleet string

	// Channel is the channel of a KindChannel topic and empty otherwise.
	Channel string

	// Device is the device of a KindDesired, KindStatus or KindEvents topic
	// and empty otherwise.
	Device string
}

// Channel returns the topic of a channel's state,
// gitfleet/v1/<fleet>/channels/<channel>.
func Channel(fleet, channel string) (string, error) {
	return Topic{Kind: KindChannel, Fleet: fleet, Channel: channel}.Name()
}

// Desired returns the topic of a device's desired state,
// gitfleet/v1/<fleet>/devices/<device>/desired.
func Desired(fleet, device string) (string, error) {
	return Topic{Kind: KindDesired, Fleet: fleet, Device: device}.Name()
}

// Status returns the topic of a device's status,
// gitfleet/v1/<fleet>/devices/<device>/status.
func Status(fleet, device string) (string, error) {
	return Topic{Kind: KindStatus, Fleet: fleet, Device: device}.Name()
}

// Events returns the topic of a device's events,
// gitfleet/v1/<fleet>/devices/<device>/events.
func Events(fleet, device string) (string, error) {
	return Topic{Kind: KindEvents, Fleet: fleet, Device: device}.Name()
}

// Name returns t's topic name, or an error naming the field of t that breaks
// the grammar.
func (t Topic) Name() (string, error) {
	if err := t.check(); err != nil {
		return "", fmt.Errorf("%s topic: %w", t.Kind, err)
	}
	return t.String(), nil
}

// check returns an error unless t is what some topic name addresses.
func (t Topic) check() error {
	if err := CheckID(t.Fleet); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	switch {
	case t.Kind == KindChannel:
		if t.Device != "" {
			return fmt.Errorf("device %s given for a channel topic", quote(t.Device))
		}
		if err := CheckID(t.Channel); err != nil {
			return fmt.Errorf("channel: %w", err)
		}
	case t.Kind.isDevice():
		if t.Channel != "" {
			return fmt.Errorf("channel %s given for a device topic", quote(t.Channel))
		}
		if err := CheckID(t.Device); err != nil {
			return fmt.Errorf("device: %w", err)
		}
	default:
		return errors.New("unknown kind")
	}
	return nil
}

// String returns t's topic name without checking t: use Name for a Topic that
// did not come from Parse.
func (t Topic) String() string {
	switch {
	case t.Kind == KindChannel:
		return Prefix + t.Fleet + "/channels/" + t.Channel
	case t.Kind.isDevice():
		return Prefix + t.Fleet + "/devices/" + t.Device + "/" + t.Kind.String()
	}
	return Prefix + t.Fleet + "/" + t.Kind.String()
}

// Parse returns what the topic name addresses, or an error saying which part
// of name breaks the grammar. It accepts exactly the names Name returns, so
// Parse(t.String()) gives back t for every valid t.
func Parse(name string) (Topic, error) {
	t, err := parse(name)
	if err != nil {
		return Topic{}, fmt.Errorf("parse topic %s: %w", quote(name), err)
	}
	return t, nil
}

func parse(name string) (Topic, error) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		if after, ok := strings.CutPrefix(name, "gitfleet/"); ok {
			version, _, _ := strings.Cut(after, "/")
			return Topic{}, fmt.Errorf("protocol version %s is not supported, want v1", quote(version))
		}
		return Topic{}, fmt.Errorf("not under %q", Prefix)
	}
	// fleet, "channels" or "devices", the ID, the device topic's leaf, and
	// anything after, which is an error.
	levels := strings.SplitN(rest, "/", 5)
	if err := CheckID(levels[0]); err != nil {
		return Topic{}, fmt.Errorf("fleet: %w", err)
	}
	t := Topic{Fleet: levels[0]}
	if len(levels) < 3 {
		return Topic{}, errors.New("want channels/<channel> or devices/<device>/<desired|status|events> after the fleet")
	}
	switch levels[1] {
	case "channels":
		if len(levels) > 3 {
			return Topic{}, errors.New("levels after the channel")
		}
		if err := CheckID(levels[2]); err != nil {
			return Topic{}, fmt.Errorf("channel: %w", err)
		}
		t.Kind, t.Channel = KindChannel, levels[2]
	case "devices":
		if err := CheckID(levels[2]); err != nil {
			return Topic{}, fmt.Errorf("device: %w", err)
		}
		if len(levels) < 4 {
			return Topic{}, errors.New("want desired, status or events after the device")
		}
		kind, ok := deviceLeaves[levels[3]]
		if !ok {
			return Topic{}, fmt.Errorf("device topic %s is unknown, want desired, status or events", quote(levels[3]))
		}
		if len(levels) > 4 {
			return Topic{}, fmt.Errorf("levels after %s", kind)
		}
		t.Kind, t.Device = kind, levels[2]
	default:
		return Topic{}, fmt.Errorf("%s after the fleet is unknown, want channels or devices", quote(levels[1]))
	}
	return t, nil
}
