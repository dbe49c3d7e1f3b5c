package ingest_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
	"github.com/gitfleet/gitfleet/server/ingest"
	"github.com/gitfleet/gitfleet/server/store"
)

// benchDevices is how many simulated devices publish at once, each over a
// connection of its own, with up to benchWindow statuses unacknowledged.
const (
	benchDevices = 200
	benchWindow  = 32
)

// BenchmarkIngest measures how many statuses per second go from simulated
// devices, through a broker, into the fleet database: an op is one status.
// benchDevices devices publish b.N statuses between them, retained at QoS 1
// as the agent does, each over a connection of its own, and the clock stops
// when the ingest has stored or superseded them all. The broker is a real
// Mosquitto of the benchmark's own (the ingest reads it through paho) or the
// embedded broker (through its inline client); the database SQLite or
// PostgreSQL.
//
// It reports msg/s and rows/s (statuses written; the others were superseded
// in their batch by a later one of the same device), the CPU time this
// process spent per message (the broker's own, for Mosquitto, is not in it),
// and, measured in the same run with the same statuses, the two limits the
// ingest sits between: what the broker delivers to a subscriber that only
// acknowledges (broker-msg/s), and what the database takes in batches
// without MQTT (db-rows/s). of-floor is msg/s over the lower of the two.
//
//	scripts/with-services.sh go test -run '^$' -bench BenchmarkIngest -benchtime 100000x ./server/ingest/
func BenchmarkIngest(b *testing.B) {
	for _, br := range []struct {
		name  string
		start func(b *testing.B, fleets ...string) benchBroker
	}{{"mosquitto", startMosquitto}, {"embedded", startEmbedded}} {
		for _, db := range []struct {
			name string
			open func(testing.TB) *store.Store
		}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
			b.Run(br.name+"/"+db.name, func(b *testing.B) {
				// The floor is measured on a fleet of its own, so that its
				// subscription, which the broker keeps, costs nothing after.
				fleet, floorFleet := testenv.ID(b), testenv.ID(b)
				bb := br.start(b, fleet, floorFleet)
				floorLoads := makeLoad(b, floorFleet, b.N)
				brokerRate := measureBroker(b, bb, floorFleet, floorLoads)
				dbRate := measureStore(b, db.open(b), floorLoads)
				loads := makeLoad(b, fleet, b.N)

				writers, _ := strconv.Atoi(os.Getenv("GITFLEET_BENCH_WRITERS"))
				in := startIngest(b, fleet, bb.client(b, "ingest"), db.open(b), ingest.Config{StatusWriters: writers})
				b.ResetTimer()
				start, cpu := time.Now(), processCPU()
				publish(b, bb, loads)
				counts := waitIngested(b, in, b.N)
				elapsed, cpu := time.Since(start), processCPU()-cpu
				b.StopTimer()

				rate := float64(b.N) / elapsed.Seconds()
				b.ReportMetric(rate, "msg/s")
				b.ReportMetric(float64(counts.Stored)/elapsed.Seconds(), "rows/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
				b.ReportMetric(brokerRate, "broker-msg/s")
				b.ReportMetric(dbRate, "db-rows/s")
				b.ReportMetric(rate/min(brokerRate, dbRate), "of-floor")
				if counts.StoreErrors+counts.Malformed+counts.Mismatched > 0 {
					b.Errorf("counts %+v: want no errors", counts)
				}
			})
		}
	}
}

// A benchBroker is the broker of a benchmark: where devices connect, with
// which password, and how the server reaches it.
type benchBroker struct {
	addr     string
	password string // every device's; "" for none
	client   func(b *testing.B, name string) bus.Client
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

// startEmbedded starts an embedded broker serving fleets, with an account
// for every simulated device.
func startEmbedded(b *testing.B, fleets ...string) benchBroker {
	const password = "bench-secret"
	h, err := broker.HashPassword(password)
	if err != nil {
		b.Fatal(err)
	}
	var lines []byte
	for i := range benchDevices {
		lines = fmt.Appendf(lines, "%s:%s\n", simDevice(i), h)
	}
	file := filepath.Join(b.TempDir(), "passwd")
	if err := os.WriteFile(file, lines, 0o600); err != nil {
		b.Fatal(err)
	}
	srv := bustest.StartBroker(b, broker.Config{Addr: "127.0.0.1:0", PasswordFile: file, Fleets: fleets})
	return benchBroker{addr: srv.Addr(), password: password, client: func(b *testing.B, _ string) bus.Client {
		c := bus.NewInline(srv.Server())
		b.Cleanup(c.Close)
		return c
	}}
}

func simDevice(i int) string { return fmt.Sprintf("sim-%04d", i) }

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A load is what one simulated device publishes: its MQTT PUBLISH packets,
// encoded beforehand so that the load costs little CPU, and its statuses.
type load struct {
	device  string
	packets [][]byte
	devices []store.Device
}

// makeLoad spreads n statuses over benchDevices devices of fleet.
func makeLoad(b *testing.B, fleet string, n int) []load {
	loads := make([]load, benchDevices)
	start := time.Now().Add(-time.Hour)
	for i := range n {
		l := &loads[i%benchDevices]
		if l.device == "" {
			l.device = simDevice(i % benchDevices)
		}
		st := status(l.device, start.Add(time.Duration(i)*time.Microsecond))
		name, err := topic.Status(fleet, l.device)
		if err != nil {
			b.Fatal(err)
		}
		id := uint16(len(l.packets)%60000 + 1)
		l.packets = append(l.packets, publishPacket(name, id, marshal(b, st)))
		l.devices = append(l.devices, store.Device{ID: l.device, Fleet: fleet, Version: st.GetVersion(), StatusTime: st.GetTime().AsTime(), Online: true})
	}
	// With fewer statuses than devices, the devices without any stay away.
	return slices.DeleteFunc(loads, func(l load) bool { return l.device == "" })
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

// measureStore returns how many of the load's statuses per second the
// database takes, in batches of ingest.DefaultBatchSize.
func measureStore(b *testing.B, st *store.Store, loads []load) float64 {
	var all []store.Device
	for k := 0; ; k++ {
		more := false
		for _, l := range loads {
			if k < len(l.devices) {
				all = append(all, l.devices[k])
				more = true
			}
		}
		if !more {
			break
		}
	}
	start := time.Now()
	for i := 0; i < len(all); i += ingest.DefaultBatchSize {
		if err := st.PutDevices(context.Background(), all[i:min(i+ingest.DefaultBatchSize, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(all)) / time.Since(start).Seconds()
}

// waitIngested waits until in stored or superseded n statuses.
func waitIngested(b *testing.B, in *ingest.Ingest, n int) ingest.Counts {
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Millisecond) {
		c := in.Counts()
		if c.Stored+c.Superseded >= uint64(n) {
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

// publishLoad is one simulated device: a bare MQTT 3.1.1 client that
// connects with a clean session, writes its PUBLISH packets with at most
// benchWindow waiting for their PUBACK, and disconnects.
func publishLoad(bb benchBroker, l load) error {
	conn, err := net.Dial("tcp", bb.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write(connectPacket(l.device, bb.password)); err != nil {
		return err
	}
	var connack [4]byte
	if _, err := io.ReadFull(r, connack[:]); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		return fmt.Errorf("%s: connect refused: % x %v", l.device, connack, err)
	}
	window := make(chan struct{}, benchWindow)
	acks := make(chan error, 1)
	go func() {
		var ack [4]byte
		for range l.packets {
			if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x40 {
				acks <- fmt.Errorf("%s: want PUBACK, got % x (%v)", l.device, ack, err)
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

// connectPacket encodes an MQTT 3.1.1 CONNECT of device with a clean
// session and a minute's keep-alive: anonymous if password is empty, else
// with the device's name and password.
func connectPacket(device, password string) []byte {
	var body []byte
	body = appendString(body, "MQTT")
	if password == "" {
		body = append(body, 4, 0x02, 0, 60)
		return appendPacket(nil, 0x10, appendString(body, device))
	}
	body = append(body, 4, 0xc2, 0, 60)
	body = appendString(body, device)
	body = appendString(body, device)
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
