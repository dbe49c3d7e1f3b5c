package ingest_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
	"github.com/gitfleet/gitfleet/server/ingest"
	"github.com/gitfleet/gitfleet/server/store"
)

// The benchmark's load: benchConns connections publish at once, each with
// up to benchWindow statuses unacknowledged, for a fleet of benchFleet
// devices.
const (
	benchConns  = 200
	benchWindow = 32
	benchFleet  = 100_000
)

// BenchmarkIngest measures how many statuses per second go from a fleet,
// through a broker, into the fleet database: an op is one status. Statuses
// of benchFleet devices, each device's at most once, come over benchConns
// connections at once, retained at QoS 1 as the agent publishes them, and
// the clock stops when the ingest has stored them all. The broker is a real
// Mosquitto of the benchmark's own (the ingest reads it through paho) or the
// embedded broker (through its inline client); the database SQLite or
// PostgreSQL. Everything runs on this machine: the load, the broker, the
// ingest and the database share its CPUs.
//
// It reports msg/s, the CPU time this process spent per message (the load,
// the ingest, SQLite, and the embedded broker when it is the broker; not
// Mosquitto nor PostgreSQL), and, measured in the same run with the same
// load, the two limits the ingest sits between: what the broker delivers to
// a subscriber that only acknowledges (broker-msg/s), and what the database
// takes in batches without MQTT (db-rows/s). of-floor is msg/s over the
// lower of the two.
//
//	scripts/with-services.sh go test -run '^$' -bench BenchmarkIngest -benchtime 50000x ./server/ingest/
func BenchmarkIngest(b *testing.B) {
	for _, br := range []struct {
		name  string
		start func(b *testing.B, fleets ...string) benchBroker
	}{{"mosquitto", startMosquitto}, {"embedded", startEmbedded}} {
		for _, db := range []struct {
			name string
			open func(testing.TB) ingest.Store
		}{
			{"sqlite", func(t testing.TB) ingest.Store { return openSQLite(t) }},
			{"postgres", func(t testing.TB) ingest.Store { return openPostgres(t) }},
			{"discard", func(testing.TB) ingest.Store { return discard{} }},
		} {
			b.Run(br.name+"/"+db.name, func(b *testing.B) {
				// The floor is measured on a fleet of its own, so that its
				// subscription, which the broker keeps, costs nothing after.
				// Each database knows the fleet's devices already, as a
				// server does but for new devices: a status updates its row.
				fleet, floorFleet := testenv.ID(b), testenv.ID(b)
				bb := br.start(b, fleet, floorFleet)
				floorLoads := makeLoad(b, floorFleet, b.N)
				brokerRate := measureBroker(b, bb, floorFleet, floorLoads)
				dbRate := math.Inf(1)
				if st := db.open(b); st != (discard{}) {
					dbRate = measureStore(b, populate(b, st, floorLoads), floorLoads)
				}
				loads := makeLoad(b, fleet, b.N)
				in := startIngest(b, fleet, bb.client(b, "ingest"), populate(b, db.open(b), loads), ingest.Config{})
				b.ResetTimer()
				start, cpu := time.Now(), processCPU()
				publish(b, bb, loads)
				counts := waitIngested(b, in, b.N)
				elapsed, cpu := time.Since(start), processCPU()-cpu
				b.StopTimer()

				rate := float64(b.N) / elapsed.Seconds()
				b.ReportMetric(rate, "msg/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
				b.ReportMetric(brokerRate, "broker-msg/s")
				if !math.IsInf(dbRate, 1) {
					b.ReportMetric(dbRate, "db-rows/s")
				}
				b.ReportMetric(rate/min(brokerRate, dbRate), "of-floor")
				if counts.StoreErrors+counts.Malformed+counts.Mismatched > 0 {
					b.Errorf("counts %+v: want no errors", counts)
				}
			})
		}
	}
}

// discard is a database that takes everything at once and keeps nothing:
// with it, the benchmark measures all but the database.
type discard struct{}

func (discard) PutDevices(context.Context, []store.Device) ([]string, error) { return nil, nil }
func (discard) SetOnline(context.Context, string, bool) error                { return nil }
func (discard) AppendEvents(_ context.Context, es []store.Event) ([]store.Appended, error) {
	as := make([]store.Appended, len(es))
	for i := range as {
		as[i] = store.Appended{Arrival: store.Next}
	}
	return as, nil
}
func (discard) RecordFailure(context.Context, string, string) (int, error) { return 1, nil }

// A benchBroker is the broker of a benchmark: where the load connects, as
// whom, and how the server reaches it.
type benchBroker struct {
	addr           string
	user, password string // "" for anonymous
	client         func(b *testing.B, name string) bus.Client
}

// startMosquitto starts a Mosquitto of the benchmark's own, for fleets,
// that lets
// anonymous clients in, with a window of unacknowledged messages per client
// large enough for batches (see the package documentation).
func startMosquitto(b *testing.B, fleets ...string) benchBroker {
	addr := testenv.Mosquitto(b, "allow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 100000\n")
	return benchBroker{addr: addr, client: func(b *testing.B, name string) bus.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := bus.DialPaho(ctx, bus.PahoConfig{Broker: "tcp://" + addr, ClientID: fleets[0] + "-" + name}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}}
}

// startEmbedded starts an embedded broker serving fleets, where the load
// signs in with the server's account, which may publish every device's
// status.
func startEmbedded(b *testing.B, fleets ...string) benchBroker {
	const user, password = "gitfleet-server", "bench-secret"
	h, err := broker.HashPassword(password)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "passwd")
	if err := os.WriteFile(file, fmt.Appendf(nil, "%s:%s\n", user, h), 0o600); err != nil {
		b.Fatal(err)
	}
	srv := bustest.StartBroker(b, broker.Config{Addr: "127.0.0.1:0", PasswordFile: file, ServerUser: user, Fleets: fleets})
	return benchBroker{addr: srv.Addr(), user: user, password: password, client: func(b *testing.B, _ string) bus.Client {
		c := bus.NewInline(srv.Server())
		b.Cleanup(c.Close)
		return c
	}}
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A load is what one connection publishes: its MQTT PUBLISH packets,
// encoded beforehand so that the load costs little CPU, and the statuses in
// them.
type load struct {
	clientID string
	packets  [][]byte
	devices  []store.Device
}

// makeLoad spreads the statuses of n devices of fleet over benchConns
// connections.
func makeLoad(b *testing.B, fleet string, n int) []load {
	loads := make([]load, min(n, benchConns))
	start := time.Now().Add(-time.Hour)
	for i := range n {
		l := &loads[i%len(loads)]
		l.clientID = fmt.Sprintf("%s-load-%d", fleet, i%len(loads))
		dev := fmt.Sprintf("sim-%06d", i%benchFleet)
		st := status(dev, start.Add(time.Duration(i)*time.Microsecond))
		name, err := topic.Status(fleet, dev)
		if err != nil {
			b.Fatal(err)
		}
		id := uint16(len(l.packets)%60000 + 1)
		l.packets = append(l.packets, publishPacket(name, id, marshal(b, st)))
		l.devices = append(l.devices, device(fleet, st))
	}
	return loads
}

// device returns the store's record of a benchmark status, as the ingest
// makes it.
func device(fleet string, st *gitfleetv1.DeviceStatus) store.Device {
	return store.Device{
		ID: st.GetDeviceId(), Fleet: fleet, DeviceType: st.GetDeviceType(), Channel: st.GetChannel(),
		AgentVersion: st.GetAgentVersion(), BootID: st.GetBootId(), BootedSlot: st.GetBootedSlot(), ActiveSlot: st.GetActiveSlot(),
		Version: st.GetVersion(), Tag: st.GetTag(), Commit: st.GetCommit(), BundleDigest: st.GetBundleDigest(),
		BootConfirmed: st.GetBootConfirmed(), UpdateState: st.GetUpdateState(), HealthOK: true,
		HealthChecks: []store.HealthCheck{{Name: "network", OK: true}}, Online: true, StatusTime: st.GetTime().AsTime(),
	}
}

// measureBroker returns how many of the load's messages per second the
// broker delivers to a subscriber that only acknowledges them.
func measureBroker(b *testing.B, bb benchBroker, fleet string, loads []load) float64 {
	filter, err := topic.Filter(topic.KindStatus, fleet)
	if err == nil {
		filter, err = topic.Shared("floor", filter)
	}
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	c := bb.client(b, "floor")
	if err := c.Subscribe(context.Background(), filter, func(m bus.Message) { got.Add(1); m.Ack() }); err != nil {
		b.Fatal(err)
	}
	total := int64(0)
	for _, l := range loads {
		total += int64(len(l.packets))
	}
	start := time.Now()
	publish(b, bb, loads)
	for deadline := time.Now().Add(5 * time.Minute); got.Load() < total; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the broker delivered %d of %d messages in 5 minutes", got.Load(), total)
		}
	}
	return float64(total) / time.Since(start).Seconds()
}

// populate records, in st, every device of loads with a status of the day
// before, and returns st.
func populate(b *testing.B, st ingest.Store, loads []load) ingest.Store {
	var all []store.Device
	for _, l := range loads {
		for _, d := range l.devices {
			d.StatusTime = d.StatusTime.Add(-24 * time.Hour)
			all = append(all, d)
		}
	}
	slices.SortFunc(all, func(a, b store.Device) int { return strings.Compare(a.ID, b.ID) })
	for i := 0; i < len(all); i += 1000 {
		if _, err := st.PutDevices(context.Background(), all[i:min(i+1000, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// measureStore returns how many of the load's statuses per second the
// database takes, in batches of ingest.DefaultBatchSize, in the order the
// broker would deliver them: devices in no order.
func measureStore(b *testing.B, st ingest.Store, loads []load) float64 {
	var all []store.Device
	for _, l := range loads {
		all = append(all, l.devices...)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	start := time.Now()
	for i := 0; i < len(all); i += ingest.DefaultBatchSize {
		if _, err := st.PutDevices(context.Background(), all[i:min(i+ingest.DefaultBatchSize, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(all)) / time.Since(start).Seconds()
}

// waitIngested waits until in stored, superseded or found stale n
// statuses.
func waitIngested(b *testing.B, in *ingest.Ingest, n int) ingest.Counts {
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Millisecond) {
		c := in.Counts()
		if c.Stored+c.Superseded+c.Stale >= uint64(n) {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes the ingest has %+v of %d statuses", c, n)
		}
	}
}

// publish has every load's device connect and publish its packets, with up
// to benchWindow unacknowledged, and returns once all are acknowledged.
func publish(b *testing.B, bb benchBroker, loads []load) {
	g := new(errgroup.Group)
	for _, l := range loads {
		g.Go(func() error { return publishLoad(bb, l) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// publishLoad is one connection of the load: a bare MQTT 3.1.1 client that
// connects with a clean session, writes its PUBLISH packets with at most
// benchWindow waiting for their PUBACK, and disconnects.
func publishLoad(bb benchBroker, l load) error {
	conn, err := net.Dial("tcp", bb.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write(connectPacket(l.clientID, bb.user, bb.password)); err != nil {
		return err
	}
	var connack [4]byte
	if _, err := io.ReadFull(r, connack[:]); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		return fmt.Errorf("%s: connect refused: % x %v", l.clientID, connack, err)
	}
	window := make(chan struct{}, benchWindow)
	acks := make(chan error, 1)
	go func() {
		var ack [4]byte
		for range l.packets {
			if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x40 {
				acks <- fmt.Errorf("%s: want PUBACK, got % x (%v)", l.clientID, ack, err)
				return
			}
			<-window
		}
		acks <- nil
	}()
	w := bufio.NewWriter(conn)
	for _, p := range l.packets {
		select {
		case window <- struct{}{}:
		case err := <-acks:
			return err
		}
		w.Write(p)
		if len(window) == benchWindow || len(window) == len(l.packets) {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := <-acks; err != nil {
		return err
	}
	_, err = conn.Write([]byte{0xe0, 0}) // DISCONNECT
	return err
}

// connectPacket encodes an MQTT 3.1.1 CONNECT with a clean session and a
// minute's keep-alive: anonymous if user is empty.
func connectPacket(clientID, user, password string) []byte {
	body := appendString(nil, "MQTT")
	if user == "" {
		body = append(body, 4, 0x02, 0, 60)
		return appendPacket(nil, 0x10, appendString(body, clientID))
	}
	body = append(body, 4, 0xc2, 0, 60)
	body = appendString(body, clientID)
	body = appendString(body, user)
	return appendPacket(nil, 0x10, appendString(body, password))
}

// publishPacket encodes a retained QoS 1 PUBLISH.
func publishPacket(name string, id uint16, payload []byte) []byte {
	body := appendString(nil, name)
	body = binary.BigEndian.AppendUint16(body, id)
	body = append(body, payload...)
	return appendPacket(nil, 0x33, body)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendPacket appends a packet of type and flags header with body.
func appendPacket(b []byte, header byte, body []byte) []byte {
	b = append(b, header)
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	return append(b, body...)
}
