// Package bus is gitfleet-server's MQTT connection: publishing signed states
// to devices and receiving what devices report. It has two clients with the
// same methods (Client): Paho, for an external broker (Mosquitto, EMQX,
// HiveMQ) over TCP or TLS, with a persistent session that survives
// reconnects; and Inline, for the embedded broker of package broker in the
// same process, which needs no connection at all.
//
// Publish sends at QoS 1 and returns once the broker has the message.
// Subscribe takes shared subscriptions ($share/<group>/<filter>, from
// topic.Shared), so that several server replicas split a fleet's reports
// between them: the broker hands each message to one replica of the group.
// A handler acknowledges each message (Message.Ack) once it is safely
// handled, so that a replica that dies before storing a report does not lose
// it: on a persistent session the broker delivers it again.
//
// Brokers differ on one point: Mosquitto 2.0.11 sends a new shared
// subscription the retained messages it matches, while the inline client,
// as MQTT 5 advises and proto/README.md assumes, does not. A handler of a
// shared subscription takes a retained message as it would a live one.
// One client with overlapping filters hands a message to the handler of each
// filter it matches, as many times as the broker sends it.
package bus

import (
	"context"
	"strings"
)

// Client is what the server's parts need of an MQTT connection.
type Client interface {
	// Publish publishes payload on the topic called name at QoS 1, retained
	// or not, and returns nil once the broker acknowledged it.
	Publish(ctx context.Context, name string, payload []byte, retained bool) error
	// Subscribe subscribes to filter at QoS 1 and hands every message that
	// arrives on it to h, until the client is closed.
	Subscribe(ctx context.Context, filter string, h Handler) error
}

// A Handler receives the messages of a subscription. It may be called from
// several goroutines at once, which the client owns, and must return
// quickly: long work belongs on a goroutine of the caller's, which acks the
// message when done. It must not change m.Payload.
type Handler func(m Message)

// A Message is one message delivered to a subscription.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is true for a retained message the broker sent because the
	// subscription is new, and false for a message published while the
	// subscription stood.
	Retained bool

	ack func()
}

// Ack tells the broker the message is handled. Until then a broker may
// deliver it again after a reconnect, and it counts against the messages the
// broker lets the client have unacknowledged (Mosquitto's
// max_inflight_messages): ack every message, once it is handled. Acking twice
// does nothing more.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// sharePrefix begins a shared subscription's filter.
const sharePrefix = "$share/"

// unshared returns the topic filter of a subscription filter, without
// $share/<group>/, and whether it was shared.
func unshared(filter string) (string, bool) {
	rest, ok := strings.CutPrefix(filter, sharePrefix)
	if !ok {
		return filter, false
	}
	_, f, ok := strings.Cut(rest, "/")
	if !ok {
		return filter, false
	}
	return f, true
}

// matches reports whether the topic called name matches filter, which has
// no $share/ prefix.
func matches(filter, name string) bool {
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		n, nrest, nmore := strings.Cut(name, "/")
		if f != "+" && f != n {
			return false
		}
		if !fmore || !nmore {
			// "a/#" also matches "a".
			return fmore == nmore || (!nmore && frest == "#")
		}
		filter, name = frest, nrest
	}
}
