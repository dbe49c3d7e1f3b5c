package outbox

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/backoff"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// These tests run the outbox as the agent does: its sender publishes
// through the agent's link to a real Mosquitto, and a subscriber with the
// server's account collects the events.

// account is who the device connects as.
type account struct{ user, password, clientID string }

// newLink returns the link of device-1 in fleet, connecting to addr.
func newLink(t *testing.T, addr, fleet string, a account, mutate ...func(*link.Config)) *link.Link {
	t.Helper()
	v := linktest.Verifier(t, bundletest.NewTrust(t, 1, 1, time.Now().Add(24*time.Hour)))
	cfg := link.Config{
		Broker: "tcp://" + addr, Fleet: fleet, Device: "device-1", Channel: "stable",
		ClientID: a.clientID, Username: a.user, Password: a.password, Dir: t.TempDir(),
		Reconnect: backoff.Policy{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	l, err := link.New(cfg, v, link.Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// start runs l and o's sender through l until stop is called or the test
// ends, and checks that both return.
func start(t *testing.T, o *Outbox, l *link.Link) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := l.Run(ctx); err != nil {
			t.Errorf("link Run = %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := o.Run(ctx, l); !errors.Is(err, context.Canceled) {
			t.Errorf("outbox Run = %v, want %v", err, context.Canceled)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// collectEvents collects device-1's events in fleet from the broker at
// addr, as the server does.
func collectEvents(t *testing.T, addr, user, password, fleet string) *linktest.Collector {
	t.Helper()
	name, err := topic.Events(fleet, "device-1")
	if err != nil {
		t.Fatal(err)
	}
	return linktest.Collect(t, addr, user, password, testenv.ID(t), name)
}

// events decodes the collected events, failing the test on a bad one.
func events(t *testing.T, msgs []linktest.Message) []*gitfleetv1.DeviceEvent {
	t.Helper()
	return linktest.Decode(t, msgs, gitfleetv1.DecodeDeviceEvent)
}

// sequences returns the sequences of msgs, in arrival order.
func sequences(t *testing.T, msgs []linktest.Message) []uint64 {
	t.Helper()
	var s []uint64
	for _, ev := range events(t, msgs) {
		s = append(s, ev.GetSequence())
	}
	return s
}

// covers returns a condition that holds once msgs hold every sequence from
// 1 to n.
func covers(t *testing.T, n uint64) func([]linktest.Message) bool {
	return func(msgs []linktest.Message) bool {
		seen := map[uint64]bool{}
		for _, s := range sequences(t, msgs) {
			seen[s] = true
		}
		for s := uint64(1); s <= n; s++ {
			if !seen[s] {
				return false
			}
		}
		return true
	}
}

// eventually waits until cond holds, failing the test after 10 s. It polls:
// what it waits for spans the outbox and the broker.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDrained waits until o has nothing pending.
func waitDrained(t *testing.T, o *Outbox) {
	t.Helper()
	eventually(t, "the outbox to drain", func() bool { return o.Pending() == 0 })
}

// checkDuplicates fails the test unless every copy of a sequence carries
// the same bytes, and returns how many duplicates there were.
func checkDuplicates(t *testing.T, msgs []linktest.Message) int {
	t.Helper()
	first := map[uint64][]byte{}
	dups := 0
	for i, ev := range events(t, msgs) {
		if b, ok := first[ev.GetSequence()]; ok {
			dups++
			if !bytes.Equal(b, msgs[i].Payload) {
				t.Errorf("sequence %d arrived twice with different bytes", ev.GetSequence())
			}
			continue
		}
		first[ev.GetSequence()] = msgs[i].Payload
	}
	return dups
}

func TestDeliverInOrderExactlyOnce(t *testing.T) {
	b := testenv.MQTT(t)
	fleet := testenv.ID(t)
	server := collectEvents(t, b.Addr, b.User, b.Password, fleet)
	o := open(t, t.TempDir(), func(c *Config) { c.Fleet = fleet })
	start(t, o, newLink(t, b.Addr, fleet, account{"device-1", b.DevicePassword, testenv.ID(t)}))

	reportAll(t, o, 1, 20)
	server.Wait(10*time.Second, covers(t, 20))
	waitDrained(t, o)
	// The engine sends its last report again after a restart: dropped.
	// Event 21 then arrives after anything 20's resend could have made.
	reportAll(t, o, 20, 21)
	msgs := server.Wait(10*time.Second, covers(t, 21))
	want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}
	if got := sequences(t, msgs); !slices.Equal(got, want) {
		t.Errorf("the server received sequences %v, want %v", got, want)
	}
	for i, ev := range events(t, msgs) {
		if ev.GetDeviceId() != "device-1" || ev.GetStreamId() != testStream || ev.GetToState() != "checking" || msgs[i].Retained {
			t.Errorf("event %d = %v (retained %v), want device-1's, stream %s, to checking, not retained", i, ev, msgs[i].Retained, testStream)
		}
	}
}

// TestNoEventLostAcrossBrokerRestart makes the broker fall silent in the
// middle of a stream of events — what the device sends still arrives, but no
// acknowledgment or ping answer comes back — until the device gives up on
// the connection; so one event reached the broker whose PUBACK the device
// never saw. Then it brings the device back to a fresh broker at the same
// address: what a broker restart without persistence looks like to the
// device (no session, no in-flight state). Every event must arrive, and the
// one in flight twice, with the same sequence and bytes.
func TestNoEventLostAcrossBrokerRestart(t *testing.T) {
	const conf = "allow_anonymous true"
	const n, first = 60, 50
	fleet := testenv.ID(t)
	before := testenv.Mosquitto(t, conf)
	proxy := linktest.NewProxy(t, before)
	serverBefore := collectEvents(t, before, "", "", fleet)
	o := open(t, t.TempDir(), func(c *Config) { c.Fleet = fleet })
	start(t, o, newLink(t, proxy.Addr(), fleet, account{clientID: testenv.ID(t)},
		func(c *link.Config) { c.KeepAlive = time.Second }))

	reportAll(t, o, 1, first)
	serverBefore.Wait(10*time.Second, func(msgs []linktest.Message) bool { return len(msgs) >= 3 })
	proxy.Block()
	proxy.Stall()
	eventually(t, "the device to give up on the silent connection", func() bool { return proxy.Conns() == 0 })
	acked := uint64(first - o.Pending())
	serverBefore.Wait(10*time.Second, func(msgs []linktest.Message) bool {
		return slices.Contains(sequences(t, msgs), acked+1)
	})
	t.Logf("event %d reached the broker, which acknowledged it in vain", acked+1)
	pendingAtLoss := o.Pending()
	reportAll(t, o, first+1, n) // while the broker is away

	after := testenv.Mosquitto(t, conf)
	serverAfter := collectEvents(t, after, "", "", fleet)
	proxy.SetBackend(after)
	proxy.Unblock()
	waitDrained(t, o)

	got := append(serverBefore.Messages(), serverAfter.Messages()...)
	if !covers(t, n)(got) {
		t.Errorf("sequences before the restart %v and after %v: some of 1 to %d were lost",
			sequences(t, serverBefore.Messages()), sequences(t, serverAfter.Messages()), n)
	}
	for name, msgs := range map[string][]linktest.Message{"before": serverBefore.Messages(), "after": serverAfter.Messages()} {
		if s := sequences(t, msgs); !slices.IsSorted(s) {
			t.Errorf("sequences %s the restart are out of order: %v", name, s)
		}
	}
	dups := checkDuplicates(t, got)
	if !slices.Contains(sequences(t, serverAfter.Messages()), acked+1) {
		t.Errorf("event %d, in flight when the broker fell silent, was not sent again", acked+1)
	}
	t.Logf("%d events waited when the connection died; the old broker got %d messages, the new one %d (first %d); %d duplicates",
		pendingAtLoss, len(serverBefore.Messages()), len(serverAfter.Messages()), sequences(t, serverAfter.Messages())[0], dups)
}

// TestCrashResendsWhatWasNotAcknowledgedOverMosquitto kills the agent in
// the middle of a stream — connection and process both gone without a word
// — and starts a new one over the same directory.
func TestCrashResendsWhatWasNotAcknowledgedOverMosquitto(t *testing.T) {
	b := testenv.MQTT(t)
	fleet := testenv.ID(t)
	server := collectEvents(t, b.Addr, b.User, b.Password, fleet)
	dir := t.TempDir()
	me := account{"device-1", b.DevicePassword, testenv.ID(t)}
	proxy := linktest.NewProxy(t, b.Addr)
	o := open(t, dir, func(c *Config) { c.Fleet = fleet })
	stop := start(t, o, newLink(t, proxy.Addr(), fleet, me))
	reportAll(t, o, 1, 30)
	server.Wait(10*time.Second, func(msgs []linktest.Message) bool { return len(msgs) >= 5 })
	proxy.Block()
	proxy.Cut()
	stop()

	o = open(t, dir, func(c *Config) { c.Fleet = fleet })
	t.Logf("%d events acknowledged before the crash, %d left", 30-o.Pending(), o.Pending())
	start(t, o, newLink(t, b.Addr, fleet, me)) // the same client id, the same session
	server.Wait(10*time.Second, covers(t, 30))
	waitDrained(t, o)
	// The restarted engine sends its last report again: dropped.
	reportAll(t, o, 30, 30)
	if got := o.Pending(); got != 0 {
		t.Errorf("Pending after the engine's resend = %d, want 0", got)
	}
	msgs := server.Messages()
	t.Logf("%d messages for 30 events: %d duplicates", len(msgs), checkDuplicates(t, msgs))
}
