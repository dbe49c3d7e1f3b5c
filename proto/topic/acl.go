package topic

import "fmt"

// CheckDevicePublish returns an error unless the device of fleet may publish
// to the topic name: only its own status and events topics. That is stricter
// than "anything under its own devices/<device>/": a device must not publish
// to its desired topic, where an empty retained message would erase the
// server's override. The embedded broker calls this for every publish by a
// device, and the ACL rendered for an external broker says the same.
func CheckDevicePublish(fleet, device, name string) error {
	t, err := Parse(name)
	if err != nil {
		return fmt.Errorf("device %s may not publish: %w", quote(device), err)
	}
	if t.Kind != KindStatus && t.Kind != KindEvents {
		return fmt.Errorf("device %s may not publish to %s topic %s", quote(device), t.Kind, quote(name))
	}
	return checkOwn(t, fleet, device, "publish")
}

// CheckDeviceSubscribe returns an error unless the device of fleet may
// subscribe to filter: a channel topic of its fleet, or its own desired topic,
// spelled out without wildcards.
func CheckDeviceSubscribe(fleet, device, filter string) error {
	t, err := Parse(filter)
	if err != nil {
		return fmt.Errorf("device %s may not subscribe: %w", quote(device), err)
	}
	switch t.Kind {
	case KindChannel:
		if t.Fleet != fleet {
			return fmt.Errorf("device %s of fleet %s may not subscribe to fleet %s", quote(device), quote(fleet), quote(t.Fleet))
		}
		return nil
	case KindDesired:
		return checkOwn(t, fleet, device, "subscribe")
	}
	return fmt.Errorf("device %s may not subscribe to %s topic %s", quote(device), t.Kind, quote(filter))
}

// checkOwn returns an error unless the device topic t belongs to the device of
// fleet.
func checkOwn(t Topic, fleet, device, verb string) error {
	if t.Fleet != fleet || t.Device != device {
		return fmt.Errorf("device %s of fleet %s may not %s to the topics of device %s of fleet %s",
			quote(device), quote(fleet), verb, quote(t.Device), quote(t.Fleet))
	}
	return nil
}
