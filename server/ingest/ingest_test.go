package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
	"github.com/gitfleet/gitfleet/server/ingest"
	"github.com/gitfleet/gitfleet/server/store"
)

// openSQLite opens a fleet database in a SQLite file of the test's own.
func openSQLite(t testing.TB) *store.Store {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "fleet.db"))
}

// openPostgres opens a fleet database of the test's own on the test
// PostgreSQL server.
func openPostgres(t testing.TB) *store.Store {
	t.Helper()
	return open(t, testenv.Postgres(t))
}

func open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// updates keeps what OnUpdate reports.
type updates struct {
	mu   sync.Mutex
	list []ingest.Update
}

func (u *updates) add(up ingest.Update) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.list = append(u.list, up)
}

func (u *updates) get() []ingest.Update {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]ingest.Update(nil), u.list...)
}

// startIngest runs an Ingest of fleet into st through c until the test
// ends, and waits until it subscribed.
func startIngest(t testing.TB, fleet string, c bus.Client, st ingest.Store, cfg ingest.Config) *ingest.Ingest {
	t.Helper()
	cfg.Fleet = fleet
	in, err := ingest.New(cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-in.Subscribed():
	case err := <-done:
		t.Fatalf("ingest stopped before it subscribed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ingest did not subscribe within 10 s")
	}
	return in
}

// waitCounts polls the counters of ins, summed, until cond holds, failing
// the test after 10 s.
func waitCounts(t testing.TB, cond func(ingest.Counts) bool, ins ...*ingest.Ingest) ingest.Counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c ingest.Counts
		for _, in := range ins {
			add(&c, in.Counts())
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts not reached after 10 s: %+v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func add(sum *ingest.Counts, c ingest.Counts) {
	sum.Statuses += c.Statuses
	sum.Events += c.Events
	sum.Stored += c.Stored
	sum.Superseded += c.Superseded
	sum.Stale += c.Stale
	sum.Offline += c.Offline
	sum.New += c.New
	sum.Duplicates += c.Duplicates
	sum.Late += c.Late
	sum.Gaps += c.Gaps
	sum.Missing += c.Missing
	sum.Failures += c.Failures
	sum.Malformed += c.Malformed
	sum.Mismatched += c.Mismatched
	sum.StoreErrors += c.StoreErrors
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t testing.TB) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func status(dev string, at time.Time) *gitfleetv1.DeviceStatus {
	return &gitfleetv1.DeviceStatus{
		DeviceId: dev, ProtocolVersion: gitfleetv1.ProtocolVersion, AgentVersion: "0.9.0", Time: timestamppb.New(at),
		Online: true, DeviceType: "rpi4", Channel: "stable", BootId: "boot-1", BootedSlot: "a", ActiveSlot: "a",
		Version: "1.4.0", Tag: "v1.4.0", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", BundleDigest: digest,
		BootConfirmed: true, UpdateState: "idle",
		Health: &gitfleetv1.Health{Ok: true, Checks: []*gitfleetv1.HealthCheck{{Name: "network", Ok: true}}},
		Labels: map[string]string{"ring": "canary"},
	}
}

func event(dev string, seq uint64) *gitfleetv1.DeviceEvent {
	return &gitfleetv1.DeviceEvent{
		DeviceId: dev, StreamId: "stream-1", Sequence: seq, BootId: "boot-1", Time: timestamppb.Now(),
		FromState: "idle", ToState: "downloading", Version: "1.5.0", BundleDigest: digest,
	}
}

func TestStatuses(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		st := openSQLite(t)
		var ups updates
		in := startIngest(t, e.Fleet, e.Client(t, "ingest"), st, ingest.Config{OnUpdate: ups.add})
		dev := e.Devices[0]
		pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
		name := must(t)(topic.Status(e.Fleet, dev))

		at := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
		pub.Publish(name, marshal(t, status(dev, at)), true)
		waitCounts(t, func(c ingest.Counts) bool { return c.Stored == 1 }, in)
		got, err := st.Device(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Device{
			ID: dev, Fleet: e.Fleet, DeviceType: "rpi4", Channel: "stable", AgentVersion: "0.9.0", BootID: "boot-1",
			BootedSlot: "a", ActiveSlot: "a", Version: "1.4.0", Tag: "v1.4.0", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
			BundleDigest: digest, BootConfirmed: true, UpdateState: "idle", HealthOK: true,
			HealthChecks: []store.HealthCheck{{Name: "network", OK: true}}, Online: true, StatusTime: at.UTC(),
			Labels: map[string]string{"ring": "canary"}, LastSeen: got.LastSeen, FirstSeen: got.FirstSeen,
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("stored device differs (-got +want):\n%s", diff)
		}

		// A status the device took before the stored one, arriving late, is
		// stale: the store keeps the latest by the device's clock.
		late := status(dev, at.Add(-30*time.Second))
		late.UpdateState = "downloading"
		pub.Publish(name, marshal(t, late), true)
		waitCounts(t, func(c ingest.Counts) bool { return c.Stale == 1 }, in)
		if got, err := st.Device(ctx, dev); err != nil || got.UpdateState != "idle" || !got.StatusTime.Equal(at) {
			t.Errorf("after a late status: device %+v, %v; want the status of %v, idle", got, err, at)
		}

		// The last will says the device is offline, and only that.
		pub.Publish(name, marshal(t, &gitfleetv1.DeviceStatus{DeviceId: dev, ProtocolVersion: gitfleetv1.ProtocolVersion}), true)
		waitCounts(t, func(c ingest.Counts) bool { return c.Offline == 1 }, in)
		got, err = st.Device(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		if got.Online || got.Version != "1.4.0" {
			t.Errorf("after the last will: online %t, version %q; want offline, version 1.4.0", got.Online, got.Version)
		}
		if u := ups.get(); len(u) != 2 || u[0].Device != dev || u[0].Status == nil || u[1].Status.GetOnline() {
			t.Errorf("OnUpdate got %+v, want the status then the last will", u)
		}
	})
}

func TestEvents(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(db.name, func(t *testing.T) {
			bustest.Both(t, func(t *testing.T, e bustest.Env) {
				ctx := context.Background()
				st := db.open(t)
				var ups updates
				in := startIngest(t, e.Fleet, e.Client(t, "ingest"), st, ingest.Config{OnUpdate: ups.add})
				dev := e.Devices[0]
				pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
				name := must(t)(topic.Events(e.Fleet, dev))

				failed := event(dev, 6)
				failed.FromState, failed.ToState = "downloading", "failed"
				failed.Error = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode_ERROR_CODE_CORRUPT_CHUNK, Message: "chunk 3"}
				// 2 again is a duplicate, 5 comes after a gap (3 and 4 missing),
				// 3 fills one place of it, and 6 records a failure.
				for _, ev := range []*gitfleetv1.DeviceEvent{event(dev, 1), event(dev, 2), event(dev, 2), event(dev, 5), event(dev, 3), failed} {
					pub.Publish(name, marshal(t, ev), false)
				}
				got := waitCounts(t, func(c ingest.Counts) bool { return c.Events == 6 && c.New+c.Duplicates == 6 }, in)
				want := ingest.Counts{Events: 6, New: 5, Duplicates: 1, Gaps: 1, Missing: 2, Late: 1, Failures: 1}
				if got != want {
					t.Errorf("got counts %+v, want %+v", got, want)
				}
				page, err := st.Events(ctx, store.EventQuery{DeviceID: dev})
				if err != nil {
					t.Fatal(err)
				}
				if n := len(page.Events); n != 5 {
					t.Errorf("the store has %d events, want 5", n)
				}
				if n, err := st.Failures(ctx, dev, digest); err != nil || n != 1 {
					t.Errorf("the store counts %d failures (err %v), want 1", n, err)
				}
				var arrivals []store.Arrival
				for _, u := range ups.get() {
					arrivals = append(arrivals, u.Arrival)
				}
				wantArrivals := []store.Arrival{store.Next, store.Next, store.AfterGap, store.Late, store.Next}
				if !slices.Equal(arrivals, wantArrivals) {
					t.Errorf("OnUpdate got arrivals %v, want %v", arrivals, wantArrivals)
				}
			})
		})
	}
}

// TestRefuses checks that messages that break the protocol are counted and
// stored nowhere, and that what follows them is stored.
func TestRefuses(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		st := openSQLite(t)
		in := startIngest(t, e.Fleet, e.Client(t, "ingest"), st, ingest.Config{})
		dev, other := e.Devices[0], e.Devices[1]
		pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
		statusTopic := must(t)(topic.Status(e.Fleet, dev))
		eventsTopic := must(t)(topic.Events(e.Fleet, dev))

		// On its own topics, device-1 claims to be device-2.
		pub.Publish(statusTopic, marshal(t, status(other, time.Now())), true)
		pub.Publish(eventsTopic, marshal(t, event(other, 1)), false)
		pub.Publish(statusTopic, []byte("not protobuf"), true)
		pub.Publish(eventsTopic, marshal(t, event(dev, 0)), false) // sequence 0 is invalid
		pub.Publish(statusTopic, marshal(t, status(dev, time.Now())), true)
		got := waitCounts(t, func(c ingest.Counts) bool { return c.Stored == 1 }, in)
		want := ingest.Counts{Statuses: 3, Events: 2, Stored: 1, Mismatched: 2, Malformed: 2}
		if got != want {
			t.Errorf("got counts %+v, want %+v", got, want)
		}
		if _, err := st.Device(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("device-2, impersonated: got %v, want ErrNotFound", err)
		}
		if page, err := st.Events(ctx, store.EventQuery{DeviceID: other}); err != nil || len(page.Events) != 0 {
			t.Errorf("device-2, impersonated, has %d events (err %v), want none", len(page.Events), err)
		}
	})
}

// TestReplicasShare runs two replicas in one group on one database: each
// event is stored once, and every gap one replica saw the other filled.
func TestReplicasShare(t *testing.T) {
	e := bustest.Mosquitto(t)
	st := openPostgres(t)
	a := startIngest(t, e.Fleet, e.Client(t, "a"), st, ingest.Config{})
	b := startIngest(t, e.Fleet, e.Client(t, "b"), st, ingest.Config{})
	dev := e.Devices[0]
	pub := linktest.Connect(t, e.Addr, dev, e.DevicePassword, e.DeviceClientID(t, dev))
	name := must(t)(topic.Events(e.Fleet, dev))
	const n = 60
	for seq := range uint64(n) {
		pub.Publish(name, marshal(t, event(dev, seq+1)), false)
	}
	got := waitCounts(t, func(c ingest.Counts) bool { return c.New+c.Duplicates == n }, a, b)
	if got.New != n || got.Duplicates != 0 || got.Missing != got.Late {
		t.Errorf("got counts %+v: want %d new, no duplicates, as many late as missing", got, n)
	}
	if a.Counts().Events == 0 || b.Counts().Events == 0 {
		t.Errorf("replica a got %d events, b %d: want both some", a.Counts().Events, b.Counts().Events)
	}
}
