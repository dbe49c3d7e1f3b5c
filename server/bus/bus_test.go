package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
)

// inbox keeps what a handler receives.
type inbox struct {
	mu      sync.Mutex
	msgs    []bus.Message
	changed chan struct{}
	noAck   bool // leave messages unacknowledged
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{})} }

func (b *inbox) handle(m bus.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m.Payload = slices.Clone(m.Payload)
	b.msgs = append(b.msgs, m)
	close(b.changed)
	b.changed = make(chan struct{})
	if !b.noAck {
		m.Ack()
	}
}

// wait waits until cond holds for the messages so far and returns them,
// failing the test after 10 s.
func (b *inbox) wait(t *testing.T, cond func([]bus.Message) bool) []bus.Message {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		msgs, changed := slices.Clone(b.msgs), b.changed
		b.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("condition not met after 10 s; %d messages received", len(msgs))
			return nil
		}
	}
}

func atLeast(n int) func([]bus.Message) bool {
	return func(m []bus.Message) bool { return len(m) >= n }
}

func must(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestPublishAndSubscribe(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		c := e.Client(t, "a")
		statuses := must(t)(topic.Shared("ingest", must(t)(topic.Filter(topic.KindStatus, e.Fleet))))
		in := newInbox()
		if err := c.Subscribe(ctx, statuses, in.handle); err != nil {
			t.Fatal(err)
		}
		dev := e.Devices[0]
		status := must(t)(topic.Status(e.Fleet, dev))
		linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev)).Publish(status, []byte("online"), true)
		got := in.wait(t, atLeast(1))
		if got[0].Topic != status || string(got[0].Payload) != "online" || got[0].Retained {
			t.Errorf("got %s %q retained=%t, want %s %q retained=false", got[0].Topic, got[0].Payload, got[0].Retained, status, "online")
		}
	})
}

func TestRetained(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		c := e.Client(t, "a")
		channel := must(t)(topic.Channel(e.Fleet, "stable"))
		if err := c.Publish(ctx, channel, []byte("state 1"), true); err != nil {
			t.Fatal(err)
		}
		// A device that subscribes later gets it, retained.
		dev := e.Devices[0]
		col := linktest.Collect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev), channel)
		if got := col.Wait(10*time.Second, func(m []linktest.Message) bool { return len(m) >= 1 }); string(got[0].Payload) != "state 1" || !got[0].Retained {
			t.Errorf("the device got %q retained=%t, want %q retained", got[0].Payload, got[0].Retained, "state 1")
		}

		filter := must(t)(topic.Filter(topic.KindChannel, e.Fleet))
		plain, shared := newInbox(), newInbox()
		if err := e.Client(t, "b").Subscribe(ctx, filter, plain.handle); err != nil {
			t.Fatal(err)
		}
		if err := e.Client(t, "c").Subscribe(ctx, must(t)(topic.Shared("g", filter)), shared.handle); err != nil {
			t.Fatal(err)
		}
		got := plain.wait(t, atLeast(1))
		if string(got[0].Payload) != "state 1" || !got[0].Retained {
			t.Errorf("a new subscription got %q retained=%t, want %q retained", got[0].Payload, got[0].Retained, "state 1")
		}
		if err := c.Publish(ctx, channel, []byte("state 2"), true); err != nil {
			t.Fatal(err)
		}
		got = plain.wait(t, atLeast(2))
		if string(got[1].Payload) != "state 2" || got[1].Retained {
			t.Errorf("the subscription got %q retained=%t, want %q live", got[1].Payload, got[1].Retained, "state 2")
		}
		got = shared.wait(t, func(m []bus.Message) bool {
			return len(m) > 0 && string(m[len(m)-1].Payload) == "state 2" && !m[len(m)-1].Retained
		})
		// Mosquitto 2.0.11 sends a new shared subscription the retained
		// messages it matches, although MQTT 5 says not to; the inline
		// client does not.
		if e.Broker != nil && len(got) != 1 {
			t.Errorf("the shared subscription got %d messages (%v), want the live one alone", len(got), got)
		}
	})
}

// TestSharedSubscriptionSplits checks that two replicas in one group share
// a device's messages, each message going to one of them.
func TestSharedSubscriptionSplits(t *testing.T) {
	e := bustest.Mosquitto(t)
	ctx := context.Background()
	events := must(t)(topic.Shared(e.Fleet, must(t)(topic.Filter(topic.KindEvents, e.Fleet))))
	a, b := newInbox(), newInbox()
	if err := e.Client(t, "a").Subscribe(ctx, events, a.handle); err != nil {
		t.Fatal(err)
	}
	if err := e.Client(t, "b").Subscribe(ctx, events, b.handle); err != nil {
		t.Fatal(err)
	}
	dev := e.Devices[0]
	pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
	const n = 20
	for i := range n {
		pub.Publish(must(t)(topic.Events(e.Fleet, dev)), fmt.Appendf(nil, "%d", i), false)
	}
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		seen = nil
		for _, in := range []*inbox{a, b} {
			in.mu.Lock()
			for _, m := range in.msgs {
				seen = append(seen, string(m.Payload))
			}
			in.mu.Unlock()
		}
		time.Sleep(10 * time.Millisecond)
	}
	slices.Sort(seen)
	if got := len(slices.Compact(slices.Clone(seen))); got != n || len(seen) != n {
		t.Fatalf("the replicas got %d messages, %d distinct, want %d, each once: %q", len(seen), got, n, seen)
	}
	if len(a.msgs) == 0 || len(b.msgs) == 0 {
		t.Errorf("replica a got %d messages, b %d: want both some", len(a.msgs), len(b.msgs))
	}
}

// TestPersistentSession checks that a replica that goes away loses nothing:
// what it received without acknowledging and what was published while it
// was away both arrive when it comes back under the same client id, even
// before it subscribes again.
func TestPersistentSession(t *testing.T) {
	e := bustest.Mosquitto(t)
	ctx := context.Background()
	events := must(t)(topic.Shared(e.Fleet, must(t)(topic.Filter(topic.KindEvents, e.Fleet))))
	dev := e.Devices[0]
	name := must(t)(topic.Events(e.Fleet, dev))
	pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))

	first := newInbox()
	first.noAck = true
	c1, err := bus.DialPaho(ctx, e.PahoConfig(e.Fleet+"-replica"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Subscribe(ctx, events, first.handle); err != nil {
		t.Fatal(err)
	}
	pub.Publish(name, []byte("unacked"), false)
	first.wait(t, atLeast(1))
	c1.Close()
	pub.Publish(name, []byte("while away"), false)

	second := newInbox()
	c2 := e.Paho(t, e.Fleet+"-replica")
	time.Sleep(200 * time.Millisecond) // let the broker deliver before the subscription exists
	if err := c2.Subscribe(ctx, events, second.handle); err != nil {
		t.Fatal(err)
	}
	got := second.wait(t, atLeast(2))
	var payloads []string
	for _, m := range got {
		payloads = append(payloads, string(m.Payload))
	}
	if want := []string{"unacked", "while away"}; !slices.Equal(payloads, want) {
		t.Errorf("after coming back the replica got %q, want %q", payloads, want)
	}
}

// TestReconnect cuts the replica's connection: it reconnects by itself and
// its subscription and publishing go on.
func TestReconnect(t *testing.T) {
	e := bustest.Mosquitto(t)
	ctx := context.Background()
	proxy := linktest.NewProxy(t, e.Addr)
	cfg := e.PahoConfig(e.Fleet + "-replica")
	cfg.Broker = "tcp://" + proxy.Addr()
	cfg.MaxReconnectInterval = 200 * time.Millisecond
	c, err := bus.DialPaho(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := newInbox()
	if err := c.Subscribe(ctx, must(t)(topic.Filter(topic.KindEvents, e.Fleet)), in.handle); err != nil {
		t.Fatal(err)
	}
	dev := e.Devices[0]
	pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
	pub.Publish(must(t)(topic.Events(e.Fleet, dev)), []byte("before"), false)
	in.wait(t, atLeast(1))

	if proxy.Cut() == 0 {
		t.Fatal("no connection to cut")
	}
	pub.Publish(must(t)(topic.Events(e.Fleet, dev)), []byte("after"), false)
	in.wait(t, atLeast(2))

	channel := must(t)(topic.Channel(e.Fleet, "stable"))
	col := linktest.Collect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev)+"-c", channel)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Publish(pctx, channel, []byte("state"), false); err != nil {
		t.Fatal(err)
	}
	col.Wait(10*time.Second, func(m []linktest.Message) bool { return len(m) >= 1 })
}
