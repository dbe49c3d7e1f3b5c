package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// AnyFleet, given as the fleet to Filter, matches every fleet.
const AnyFleet = "+"

// sharePrefix begins a shared subscription (MQTT 5, and MQTT 3.1.1 on
// Mosquitto, EMQX and HiveMQ).
const sharePrefix = "$share/"

// maxTopicLen is MQTT's limit on a topic name or filter, in bytes.
const maxTopicLen = 65535

// Filter returns the subscription filter that matches every topic of kind in
// fleet, which is an ID or AnyFleet. For example Filter(KindStatus, "acme")
// is gitfleet/v1/acme/devices/+/status.
func Filter(kind Kind, fleet string) (string, error) {
	if fleet != AnyFleet {
		if err := CheckID(fleet); err != nil {
			return "", fmt.Errorf("%s filter: fleet: %w", kind, err)
		}
	}
	switch {
	case kind == KindChannel:
		return Prefix + fleet + "/channels/+", nil
	case kind.isDevice():
		return Prefix + fleet + "/devices/+/" + kind.String(), nil
	}
	return "", fmt.Errorf("%s filter: unknown kind", kind)
}

// Shared returns filter as a shared subscription of group,
// $share/<group>/<filter>. The broker hands each matching message to one
// subscriber of the group, so server replicas subscribed with the same group
// split ingest between them. group is an ID.
//
// Brokers do not send retained messages to shared subscriptions: a replica
// that needs the retained status of every device subscribes without sharing.
func Shared(group, filter string) (string, error) {
	if err := CheckID(group); err != nil {
		return "", fmt.Errorf("shared subscription: group: %w", err)
	}
	if err := checkFilter(filter); err != nil {
		return "", fmt.Errorf("shared subscription: filter %s: %w", quote(filter), err)
	}
	return sharePrefix + group + "/" + filter, nil
}

// checkFilter returns an error unless filter is a valid MQTT topic filter
// that is not already a shared subscription.
func checkFilter(filter string) error {
	switch {
	case filter == "":
		return errors.New("empty")
	case len(filter) > maxTopicLen:
		return fmt.Errorf("%d bytes, over MQTT's limit of %d", len(filter), maxTopicLen)
	case !utf8.ValidString(filter):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(filter, 0):
		return errors.New("contains NUL")
	case strings.HasPrefix(filter, sharePrefix):
		return errors.New("already shared")
	}
	levels := strings.Split(filter, "/")
	for i, level := range levels {
		switch {
		case level == "#" && i != len(levels)-1:
			return errors.New(`"#" is not the last level`)
		case level != "#" && strings.Contains(level, "#"):
			return errors.New(`"#" is not a whole level`)
		case level != "+" && strings.Contains(level, "+"):
			return errors.New(`"+" is not a whole level`)
		}
	}
	return nil
}
