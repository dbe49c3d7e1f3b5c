package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/internal/backoff"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

const testStream = "5f2b9c0e7d1a3b46"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// report returns a valid report of stream with sequence seq.
func report(stream string, seq uint64) update.Report {
	return update.Report{StreamID: stream, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
		BootID: "boot-1", From: update.Idle, To: update.Checking, Event: update.Offered,
		Release: update.Release{Version: "1.4.0", Digest: "sha256:" + strings.Repeat("ab", 32)}}
}

func open(t *testing.T, dir string, mutate ...func(*Config)) *Outbox {
	t.Helper()
	cfg := Config{Dir: dir, Fleet: "acme", Device: "device-1",
		Retry: backoff.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}}
	for _, m := range mutate {
		m(&cfg)
	}
	o, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// reportAll reports sequences from to to of testStream.
func reportAll(t *testing.T, o *Outbox, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		if err := o.Report(context.Background(), report(testStream, seq)); err != nil {
			t.Fatalf("Report(%d): %v", seq, err)
		}
	}
}

// recorder is a Publisher that keeps what it is given, after failing the
// first failures calls, and fails every call once it kept limit events
// (if limit > 0).
type recorder struct {
	mu       sync.Mutex
	failures int
	limit    int
	topics   []string
	events   []*gitfleetv1.DeviceEvent
	changed  chan struct{}
}

func newRecorder(failures int) *recorder {
	return &recorder{failures: failures, changed: make(chan struct{})}
}

func (r *recorder) Publish(ctx context.Context, topic string, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { close(r.changed); r.changed = make(chan struct{}) }()
	if r.failures > 0 || (r.limit > 0 && len(r.events) >= r.limit) {
		r.failures--
		return errors.New("broker unreachable")
	}
	ev, err := gitfleetv1.DecodeDeviceEvent(payload)
	if err != nil {
		return err
	}
	r.topics = append(r.topics, topic)
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []uint64
	for _, ev := range r.events {
		s = append(s, ev.GetSequence())
	}
	return s
}

// runUntil runs o's sender with p until o has nothing pending, or fails the
// test after 10 s, then stops it.
func runUntil(t *testing.T, o *Outbox, p Publisher, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- o.Run(ctx, p) }()
	defer func() {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want %v", err, context.Canceled)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("not done after 10 s; %d events pending", o.Pending())
		}
		if r, ok := p.(*recorder); ok {
			r.mu.Lock()
			changed := r.changed
			r.mu.Unlock()
			select {
			case <-changed:
			case <-time.After(10 * time.Millisecond): // the ack follows the publish
			}
		}
	}
}

func TestEvent(t *testing.T) {
	base := func() *gitfleetv1.DeviceEvent {
		return &gitfleetv1.DeviceEvent{DeviceId: "device-1", StreamId: testStream, Sequence: 3, BootId: "boot-1",
			Time: timestamppb.New(t0.Add(3 * time.Second)), FromState: "idle", ToState: "checking",
			Version: "1.4.0", BundleDigest: "sha256:" + strings.Repeat("ab", 32)}
	}
	for _, tc := range []struct {
		name   string
		modify func(*update.Report)
		want   func(*gitfleetv1.DeviceEvent)
	}{
		{"plain transition", func(*update.Report) {}, func(*gitfleetv1.DeviceEvent) {}},
		{"progress",
			func(r *update.Report) { r.Done, r.Total = 100, 400 },
			func(e *gitfleetv1.DeviceEvent) { e.Progress = &gitfleetv1.Progress{DoneBytes: 100, TotalBytes: 400} }},
		{"known error code",
			func(r *update.Report) {
				r.Error = &update.Failure{Code: "ERROR_CODE_BAD_SIGNATURE", Message: "signature by targets key 0a1b does not verify"}
			},
			func(e *gitfleetv1.DeviceEvent) {
				e.Error = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE, Message: "signature by targets key 0a1b does not verify"}
			}},
		{"unknown error code keeps its name",
			func(r *update.Report) { r.Error = &update.Failure{Code: "ERROR_CODE_FROM_THE_FUTURE", Message: "hm"} },
			func(e *gitfleetv1.DeviceEvent) {
				e.Error = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode_ERROR_CODE_INTERNAL, Message: "ERROR_CODE_FROM_THE_FUTURE: hm"}
			}},
		{"message made one line",
			func(r *update.Report) {
				r.Error = &update.Failure{Code: "ERROR_CODE_TIMEOUT", Message: "line 1\nline 2"}
			},
			func(e *gitfleetv1.DeviceEvent) {
				e.Error = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode_ERROR_CODE_TIMEOUT, Message: "line 1 line 2"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report(testStream, 3)
			tc.modify(&r)
			want := base()
			tc.want(want)
			got := Event("device-1", r)
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Event (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Event is invalid: %v", err)
			}
		})
	}
}

func TestReportIsDurableAndDropsWhatItHolds(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir)
	ctx := context.Background()
	for _, seq := range []uint64{1, 2, 2, 1} {
		if err := o.Report(ctx, report(testStream, seq)); err != nil {
			t.Fatalf("Report(%d): %v", seq, err)
		}
	}
	if got, want := o.Pending(), 2; got != want {
		t.Errorf("Pending = %d, want %d", got, want)
	}
	// What Report recorded is on disk: a new Outbox sees it.
	if got, want := open(t, dir).Pending(), 2; got != want {
		t.Errorf("after reopening, Pending = %d, want %d", got, want)
	}
}

func TestReportRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir)
	r := report(testStream, 0)
	err := o.Report(context.Background(), r)
	var fe *gitfleetv1.FieldError
	if !errors.As(err, &fe) || fe.Field != "sequence" {
		t.Errorf("Report(seq 0) = %v, want a FieldError on sequence", err)
	}
	if got := o.Pending(); got != 0 {
		t.Errorf("Pending = %d, want 0", got)
	}
}

func TestDeliverInOrderAndDropRedelivered(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir)
	ctx := context.Background()
	reportAll(t, o, 1, 5)
	rec := newRecorder(3) // the first three attempts fail: the same event is sent again
	runUntil(t, o, rec, func() bool { return o.Pending() == 0 })
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5}, rec.seqs()); diff != "" {
		t.Errorf("published sequences (-want +got):\n%s", diff)
	}
	if got, want := rec.topics[0], "gitfleet/v1/acme/devices/device-1/events"; got != want {
		t.Errorf("topic = %q, want %q", got, want)
	}
	// The engine sends its last report again after a restart: delivered,
	// so dropped, by this outbox and by a new one over the same directory.
	for _, o := range []*Outbox{o, open(t, dir)} {
		if err := o.Report(ctx, report(testStream, 5)); err != nil {
			t.Fatal(err)
		}
		if got := o.Pending(); got != 0 {
			t.Errorf("Pending after re-reporting a delivered event = %d, want 0", got)
		}
	}
	if got, want := records(t, dir), []string{deliveredName}; !slices.Equal(got, want) {
		t.Errorf("files after delivery = %v, want %v", got, want)
	}
}

func TestCrashResendsWhatWasNotAcknowledged(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir)
	reportAll(t, o, 1, 5)
	first := newRecorder(0)
	first.limit = 2
	runUntil(t, o, first, func() bool { return o.Pending() == 3 })
	// The agent dies here: the next run opens the same directory.
	o = open(t, dir)
	if got, want := o.Pending(), 5-len(first.seqs()); got != want {
		t.Fatalf("after the crash, Pending = %d, want %d", got, want)
	}
	second := newRecorder(0)
	runUntil(t, o, second, func() bool { return o.Pending() == 0 })
	if got, want := append(first.seqs(), second.seqs()...), []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("published sequences = %v, want %v", got, want)
	}
}

func TestFullRefusesNewEvents(t *testing.T) {
	o := open(t, t.TempDir(), func(c *Config) { c.MaxBytes = 2 * blockSize })
	ctx := context.Background()
	reportAll(t, o, 1, 2)
	err := o.Report(ctx, report(testStream, 3))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Report over the budget = %v, want %v", err, ErrFull)
	}
	if got, want := gitfleetv1.ErrorCodeOf(err), gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE; got != want {
		t.Errorf("code = %v, want %v", got, want)
	}
	t.Logf("the refusal reads: %v", err)
	if got, want := o.Pending(), 2; got != want {
		t.Errorf("Pending = %d, want %d: nothing is dropped to make room", got, want)
	}
	// Once delivered, there is room again.
	runUntil(t, o, newRecorder(0), func() bool { return o.Pending() == 0 })
	if err := o.Report(ctx, report(testStream, 3)); err != nil {
		t.Errorf("Report after delivery: %v", err)
	}
}

func TestStreamsInOrderOfTheirEvents(t *testing.T) {
	o := open(t, t.TempDir())
	ctx := context.Background()
	// The device lost its counter: a new stream starts at 1 while the old
	// one still has events waiting. The old stream's go first, in order.
	young, old1, old2 := report("new-stream", 1), report("old-stream", 41), report("old-stream", 42)
	young.Time = old2.Time.Add(time.Minute)
	for _, r := range []update.Report{young, old2, old1} {
		if err := o.Report(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder(0)
	runUntil(t, o, rec, func() bool { return o.Pending() == 0 })
	var got []string
	for _, ev := range rec.events {
		got = append(got, fmt.Sprintf("%s/%d", ev.GetStreamId(), ev.GetSequence()))
	}
	if want := []string{"old-stream/41", "old-stream/42", "new-stream/1"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestOpenAfterPowerCut lays out what a power cut can leave at each step of
// Report and of an acknowledgment, and checks what Open makes of it.
func TestOpenAfterPowerCut(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir)
	ctx := context.Background()
	reportAll(t, o, 1, 4)
	one := newRecorder(0)
	one.limit = 1
	runUntil(t, o, one, func() bool { return o.Pending() == 3 }) // 1 acknowledged
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rec1 := encodeRecord(validPayloadOf(t, 1))
	// Cut after the delivery mark, before the removal: record 1 is back.
	write(recordName(testStream, 1), rec1)
	// Cut during Report's write of event 5: a temporary file, never renamed.
	write("."+recordName(testStream, 5)+".tmp-123", encodeRecord(validPayloadOf(t, 5))[:9])
	// Damaged media: record 4 no longer parses.
	b, err := os.ReadFile(filepath.Join(dir, recordName(testStream, 4)))
	if err != nil {
		t.Fatal(err)
	}
	write(recordName(testStream, 4), b[:len(b)-3])
	// A file the outbox does not own stays untouched.
	write("README", []byte("hands off"))

	o = open(t, dir)
	if got, want := o.Pending(), 2; got != want { // 2 and 3
		t.Errorf("Pending = %d, want %d", got, want)
	}
	if got, want := records(t, dir), []string{
		"README", deliveredName, recordName(testStream, 2), recordName(testStream, 3), recordName(testStream, 4) + corruptSuffix,
	}; !slices.Equal(got, sorted(want)) {
		t.Errorf("files = %v, want %v", got, sorted(want))
	}
	rec := newRecorder(0)
	runUntil(t, o, rec, func() bool { return o.Pending() == 0 })
	if got, want := rec.seqs(), []uint64{2, 3}; !slices.Equal(got, want) {
		t.Errorf("published = %v, want %v", got, want)
	}
	// The engine reports 5 again, since its Report never returned.
	if err := o.Report(ctx, report(testStream, 5)); err != nil || o.Pending() != 1 {
		t.Errorf("Report(5) = %v with %d pending, want nil with 1", err, o.Pending())
	}
}

func validPayloadOf(t *testing.T, seq uint64) []byte {
	t.Helper()
	b, err := marshalEvent(Event("device-1", report(testStream, seq)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records lists the names in dir, sorted.
func records(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return sorted(names)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
