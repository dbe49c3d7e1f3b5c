package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// appendSteps are events appended in turn and how each stands to those
// before it.
var appendSteps = []struct {
	device, stream string
	seq            uint64
	want           Appended
}{
	{"d1", "s1", 1, Appended{Arrival: Next}},
	{"d1", "s1", 2, Appended{Arrival: Next}},
	{"d1", "s1", 2, Appended{Arrival: Duplicate}},
	{"d1", "s1", 1, Appended{Arrival: Duplicate}},
	{"d1", "s1", 6, Appended{Arrival: AfterGap, Missing: 3}},
	{"d1", "s1", 6, Appended{Arrival: Duplicate}},
	{"d1", "s1", 4, Appended{Arrival: Late}},
	{"d1", "s1", 4, Appended{Arrival: Duplicate}},
	{"d1", "s1", 3, Appended{Arrival: Late}},
	{"d1", "s1", 7, Appended{Arrival: Next}},
	{"d1", "s1", 5, Appended{Arrival: Late}},
	// A new stream (the device lost its counter) starts again at 1.
	{"d1", "s2", 1, Appended{Arrival: Next}},
	{"d1", "s2", 2, Appended{Arrival: Next}},
	// A stream first seen after its start has a gap before it.
	{"d1", "s3", 4, Appended{Arrival: AfterGap, Missing: 3}},
	// Streams of other devices are their own, whatever their ids.
	{"d2", "s1", 1, Appended{Arrival: Next}},
	{"d2", "s1", 3, Appended{Arrival: AfterGap, Missing: 1}},
	{"d2", "s1", math.MaxInt64, Appended{Arrival: AfterGap, Missing: math.MaxInt64 - 4}},
}

func TestAppendEvent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, step := range appendSteps {
			got, err := s.AppendEvent(ctx, Event{DeviceID: step.device, StreamID: step.stream, Sequence: step.seq, ToState: "idle"})
			if err != nil {
				t.Fatalf("AppendEvent(%s %s %d): %v", step.device, step.stream, step.seq, err)
			}
			if got != step.want {
				t.Errorf("AppendEvent(%s %s %d) = %+v, want %+v", step.device, step.stream, step.seq, got, step.want)
			}
		}
		for _, bad := range []Event{
			{StreamID: "s", Sequence: 1},
			{DeviceID: "d", Sequence: 1},
			{DeviceID: "d", StreamID: "s"},
			{DeviceID: "d", StreamID: "s", Sequence: math.MaxInt64 + 1},
		} {
			if _, err := s.AppendEvent(ctx, bad); err == nil {
				t.Errorf("AppendEvent(%+v) succeeded, want an error", bad)
			}
		}
	})
}

// Replicas ingesting one stream at once, out of order and with every event
// delivered twice, agree: each event is new to exactly one of them, and the
// gaps they report are filled by exactly the events they report late.
// TestAppendEvents appends appendSteps in batches, and gets the answers of
// appending them one by one.
func TestAppendEvents(t *testing.T) {
	for _, size := range []int{1, 3, len(appendSteps)} {
		t.Run(fmt.Sprintf("batches of %d", size), func(t *testing.T) {
			eachStore(t, func(t *testing.T, s *Store) {
				ctx := context.Background()
				for start := 0; start < len(appendSteps); start += size {
					steps := appendSteps[start:min(start+size, len(appendSteps))]
					var es []Event
					var want []Appended
					for _, step := range steps {
						es = append(es, Event{DeviceID: step.device, StreamID: step.stream, Sequence: step.seq, ToState: "idle"})
						want = append(want, step.want)
					}
					got, err := s.AppendEvents(ctx, es)
					if err != nil {
						t.Fatalf("AppendEvents(steps %d..): %v", start, err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("AppendEvents(steps %d..) (-want +got):\n%s", start, diff)
					}
				}
			})
		})
	}
	t.Run("devices interleaved", func(t *testing.T) {
		eachStore(t, func(t *testing.T, s *Store) {
			// d2's events first, then d1's and d2's in turn: each device's
			// in its order, and the answers in the batch's.
			var d1, d2 []int
			for i, step := range appendSteps {
				if step.device == "d1" {
					d1 = append(d1, i)
				} else {
					d2 = append(d2, i)
				}
			}
			order := []int{d2[0]}
			for i := range max(len(d1), len(d2)) {
				if i < len(d1) {
					order = append(order, d1[i])
				}
				if i+1 < len(d2) {
					order = append(order, d2[i+1])
				}
			}
			var es []Event
			var want []Appended
			for _, i := range order {
				step := appendSteps[i]
				es = append(es, Event{DeviceID: step.device, StreamID: step.stream, Sequence: step.seq, ToState: "idle"})
				want = append(want, step.want)
			}
			got, err := s.AppendEvents(context.Background(), es)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AppendEvents (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("all or none", func(t *testing.T) {
		eachStore(t, func(t *testing.T, s *Store) {
			ctx := context.Background()
			good := Event{DeviceID: "d1", StreamID: "s1", Sequence: 1, ToState: "idle"}
			if _, err := s.AppendEvents(ctx, []Event{good, {DeviceID: "d1", StreamID: "s1"}}); err == nil {
				t.Fatal("AppendEvents with an event without sequence succeeded, want an error")
			}
			got, err := s.AppendEvents(ctx, []Event{good})
			if err != nil {
				t.Fatal(err)
			}
			if want := []Appended{{Arrival: Next}}; !cmp.Equal(got, want) {
				t.Errorf("after a refused batch, AppendEvents(first event) = %+v, want %+v", got, want)
			}
		})
	})
}

func TestAppendEventConcurrent(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		const nReplicas, nEvents, copies = 3, 60, 2
		stores := replicas(t, dsn, nReplicas)
		var seqs []uint64
		for seq := uint64(1); seq <= nEvents; seq++ {
			for range copies {
				seqs = append(seqs, seq)
			}
		}
		rand.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })

		var mu sync.Mutex
		count := make(map[Arrival]int)
		newTo := make(map[uint64]int)
		var missing uint64
		race(len(seqs), func(i int) {
			e := Event{DeviceID: "dev-1", StreamID: "stream-1", Sequence: seqs[i]}
			a, err := stores[i%nReplicas].AppendEvent(context.Background(), e)
			if err != nil {
				t.Errorf("AppendEvent(%d): %v", seqs[i], err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			count[a.Arrival]++
			missing += a.Missing
			if a.Arrival != Duplicate {
				newTo[seqs[i]]++
			}
		})
		if t.Failed() {
			return
		}
		for seq := uint64(1); seq <= nEvents; seq++ {
			if newTo[seq] != 1 {
				t.Errorf("event %d was new %d times, want once", seq, newTo[seq])
			}
		}
		if got, want := count[Duplicate], nEvents*(copies-1); got != want {
			t.Errorf("%d duplicates, want %d", got, want)
		}
		if got, want := missing, uint64(count[Late]); got != want {
			t.Errorf("gaps reported %d missing events, but %d arrived late", got, want)
		}
		p, err := stores[0].Events(context.Background(), EventQuery{DeviceID: "dev-1", Limit: MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(p.Events), nEvents; got != want {
			t.Errorf("%d events stored, want %d", got, want)
		}
	})
}

func TestEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		base := clk.Now()
		// Two streams; the second (after a factory reset) starts later. Events
		// 3 and 4 of the first stream arrive in the same microsecond.
		var all []Event
		appendAt := func(stream string, seq uint64, received time.Time) {
			t.Helper()
			e := Event{
				DeviceID: "dev-1", StreamID: stream, Sequence: seq, BootID: "boot-" + stream,
				FromState: "idle", ToState: "downloading", Version: "1.5.0", BundleDigest: "sha256:9f8e",
				DoneBytes: int64(seq) * 100, TotalBytes: 1000, ErrorCode: "ERROR_CODE_DOWNLOAD",
				ErrorMessage: fmt.Sprintf("event %d", seq), Time: received.Add(-time.Second), Received: received,
			}
			if _, err := s.AppendEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
			all = append(all, e)
		}
		appendAt("s1", 1, base)
		appendAt("s1", 2, base.Add(time.Second))
		appendAt("s1", 3, base.Add(2*time.Second))
		appendAt("s1", 4, base.Add(2*time.Second))
		appendAt("s2", 1, base.Add(3*time.Second))
		appendAt("s2", 2, base.Add(4*time.Second))
		appendAt("s2", 3, base.Add(5*time.Second))
		// Another device's events are not in dev-1's history. Its Received is
		// zero: now.
		if _, err := s.AppendEvent(ctx, Event{DeviceID: "dev-2", StreamID: "s1", Sequence: 1}); err != nil {
			t.Fatal(err)
		}

		var newestFirst []Event
		for i := len(all) - 1; i >= 0; i-- {
			newestFirst = append(newestFirst, all[i])
		}
		for _, limit := range []int{1, 2, 3, 7, 100} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				var got []Event
				q := EventQuery{DeviceID: "dev-1", Limit: limit}
				for pages := 1; ; pages++ {
					p, err := s.Events(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Events) > limit {
						t.Fatalf("page %d holds %d events, more than the limit", pages, len(p.Events))
					}
					got = append(got, p.Events...)
					if p.Next == "" {
						break
					}
					if pages > len(all) {
						t.Fatalf("more than %d pages", pages)
					}
					q.Before = p.Next
				}
				if diff := cmp.Diff(newestFirst, got); diff != "" {
					t.Errorf("history (-want +got):\n%s", diff)
				}
			})
		}

		p, err := s.Events(ctx, EventQuery{DeviceID: "dev-2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 1 || !p.Events[0].Received.Equal(clk.Now()) {
			t.Errorf("dev-2's history = %+v, want one event received now", p.Events)
		}
		p, err = s.Events(ctx, EventQuery{DeviceID: "dev-unknown"})
		if err != nil || len(p.Events) != 0 || p.Next != "" {
			t.Errorf("history of an unknown device = %+v, %v; want empty", p, err)
		}
		for _, bad := range []string{"x", "1.2", "a.1.s1", "1.b.s1"} {
			if _, err := s.Events(ctx, EventQuery{DeviceID: "dev-1", Before: bad}); err == nil {
				t.Errorf("Events with cursor %q succeeded, want an error", bad)
			}
		}
	})
}
