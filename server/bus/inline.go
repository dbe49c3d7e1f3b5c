package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// An Inline is a Client of the embedded broker in the same process, through
// mochi-mqtt's inline client: no connection, no account, no ACL. Publish
// hands the message to the broker's subscribers before it returns. A shared
// subscription is an ordinary one, since one process is the only member of
// its group, and like a shared subscription it gets no retained messages.
// Acking does nothing: the broker acknowledged the device's publish already.
type Inline struct {
	srv *mqtt.Server

	mu     sync.Mutex
	subs   map[int]string // subscription id → topic filter
	closed bool
}

// inlineIDs numbers inline subscriptions. mochi keeps them by number, across
// all filters and all users of a broker: each must have its own, or one
// would replace another.
var inlineIDs atomic.Int64

// NewInline returns a client of srv, which must have its inline client
// enabled, as broker.Broker.Server has.
func NewInline(srv *mqtt.Server) *Inline {
	return &Inline{srv: srv, subs: map[int]string{}}
}

// Publish publishes payload on the topic called name, retained or not,
// and returns once the broker has handed it to its subscribers.
func (c *Inline) Publish(ctx context.Context, name string, payload []byte, retained bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", name, err)
	}
	if err := c.srv.Publish(name, payload, retained, 1); err != nil {
		return fmt.Errorf("publish to %s: %w", name, err)
	}
	return nil
}

// Subscribe subscribes to filter and hands its messages to h, called on the
// goroutine of the client that published each, until Close. A filter that
// is not shared gets the retained messages it matches first, on the calling
// goroutine.
func (c *Inline) Subscribe(ctx context.Context, filter string, h Handler) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", filter, err)
	}
	topicFilter, shared := unshared(filter)
	if !mqtt.IsValidFilter(topicFilter, false) {
		return fmt.Errorf("subscribe to %s: not a valid topic filter", filter)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("subscribe to %s: client closed", filter)
	}
	id := int(inlineIDs.Add(1))
	c.subs[id] = topicFilter
	c.mu.Unlock()
	c.srv.Topics.InlineSubscribe(mqtt.InlineSubscription{
		Subscription: packets.Subscription{Filter: topicFilter, Identifier: id, Qos: 1},
		Handler: func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			h(Message{Topic: pk.TopicName, Payload: pk.Payload})
		},
	})
	if !shared {
		for _, pk := range c.srv.Topics.Messages(topicFilter) {
			h(Message{Topic: pk.TopicName, Payload: pk.Payload, Retained: true})
		}
	}
	return nil
}

// Close ends the client's subscriptions.
func (c *Inline) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, f := range c.subs {
		c.srv.Topics.InlineUnsubscribe(id, f)
	}
	clear(c.subs)
	c.closed = true
}
