package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/internal/atomicfile"
	"github.com/gitfleet/gitfleet/internal/backoff"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// DefaultMaxBytes is the disk budget of an outbox whose Config leaves
// MaxBytes zero: 1,024 events at one 4 KiB block each.
const DefaultMaxBytes = 4 << 20

// blockSize is what one record file is counted as at least, and rounded up
// to: the filesystem gives every file whole blocks.
const blockSize = 4 << 10

// deliveredName is the file that remembers, per stream, the highest
// sequence the broker acknowledged.
const deliveredName = "delivered.json"

// maxStreams bounds the streams delivered.json remembers. A device starts a
// new stream only when it loses its event counter, and only the current
// stream's last report is ever sent again.
const maxStreams = 8

// ErrFull is returned by Report when recording the report would take the
// outbox over its disk budget. The outbox never drops an event the broker
// has not acknowledged to make room, so it refuses the new one instead; the
// engine, which persisted its journal first, reports it again when it
// resumes. Its wire code is ERROR_CODE_NO_SPACE.
var ErrFull = gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE, errors.New("outbox full"))

// Config says where an outbox keeps its events and whose they are.
type Config struct {
	// Dir holds the outbox's files; Open creates it. It must be on a
	// filesystem that survives a reboot, and only one Outbox may use it at a
	// time.
	Dir string
	// Fleet and Device name the events topic,
	// gitfleet/v1/<Fleet>/devices/<Device>/events, and Device is every
	// event's device_id.
	Fleet, Device string
	// MaxBytes is the disk budget: the most bytes the events waiting for the
	// broker may take, each counted in whole 4 KiB blocks. Zero means
	// DefaultMaxBytes.
	MaxBytes int64
	// Retry paces the sender's attempts after a failed publish. The zero
	// value means 1 s doubling to at most 1 min, with full jitter.
	Retry backoff.Policy
}

// An Outbox is an on-disk queue of device events. Report records an event
// durably; Run publishes the recorded events in order and forgets each one
// only once the broker acknowledged it. Its methods are safe for concurrent
// use.
type Outbox struct {
	cfg   Config
	topic string
	log   *slog.Logger

	mu        sync.Mutex
	pending   map[string]*entry // by file name
	used      int64             // bytes counted against MaxBytes
	delivered []mark            // oldest first
	wake      chan struct{}     // has a value when pending may have grown
}

// An entry is one recorded event waiting for the broker.
type entry struct {
	name    string // file name in Dir
	stream  string
	seq     uint64
	time    time.Time // when the event happened: orders streams
	payload []byte    // the serialized DeviceEvent, published as is
	size    int64     // counted against MaxBytes
}

// A mark is the highest sequence of a stream the broker acknowledged.
type mark struct {
	Stream string `json:"stream_id"`
	Seq    uint64 `json:"seq"`
}

var _ update.Reporter = (*Outbox)(nil)

// Open opens the outbox in cfg.Dir, creating the directory if needed, and
// loads the events a previous run recorded but did not deliver. A record
// file that does not parse (media damage) is renamed with a ".corrupt"
// suffix and logged, since it cannot be sent; leftovers of interrupted
// writes are removed.
func Open(cfg Config, log *slog.Logger) (*Outbox, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open outbox: no directory: set Config.Dir")
	}
	name, err := topic.Events(cfg.Fleet, cfg.Device)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxBytes < blockSize {
		return nil, fmt.Errorf("open outbox: MaxBytes %d is below one %d-byte block", cfg.MaxBytes, blockSize)
	}
	if cfg.Retry == (backoff.Policy{}) {
		cfg.Retry = backoff.Policy{Base: time.Second, Max: time.Minute}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{cfg: cfg, topic: name, log: log.With("device", cfg.Device), pending: map[string]*entry{}, wake: make(chan struct{}, 1)}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	o.delivered = o.loadDelivered()
	if err := o.load(); err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", cfg.Dir, err)
	}
	if len(o.pending) > 0 {
		o.signal()
	}
	return o, nil
}

// loadDelivered reads delivered.json. The file is only ever replaced
// atomically, so a damaged one means damaged media: the outbox then starts
// without marks, and at worst sends an acknowledged event again, which the
// server drops as a duplicate.
func (o *Outbox) loadDelivered() []mark {
	path := filepath.Join(o.cfg.Dir, deliveredName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var marks []mark
	if err == nil {
		err = json.Unmarshal(b, &marks)
	}
	if err != nil {
		o.log.Error("outbox: ignoring the delivery marks: already acknowledged events may be sent again", "path", path, "err", err)
		return nil
	}
	return marks
}

// load reads every record file of the directory.
func (o *Outbox) load() error {
	des, err := os.ReadDir(o.cfg.Dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(o.cfg.Dir, name)
		if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
			// A write the power cut interrupted: its Report never returned.
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		key, seq, ok := parseRecordName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		payload, ev, err := decodeRecord(b)
		if err == nil && (streamKey(ev.GetStreamId()) != key || ev.GetSequence() != seq) {
			err = fmt.Errorf("%w: holds stream %q sequence %d", errCorrupt, ev.GetStreamId(), ev.GetSequence())
		}
		if err != nil {
			o.log.Error("outbox: a recorded event is damaged and will not be sent", "path", path, "err", err)
			if err := os.Rename(path, path+corruptSuffix); err != nil {
				return err
			}
			continue
		}
		if seq <= o.deliveredSeq(ev.GetStreamId()) {
			// Acknowledged, but the run ended before removing it.
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		e := &entry{name: name, stream: ev.GetStreamId(), seq: seq, time: ev.GetTime().AsTime(),
			payload: payload, size: blocks(len(b))}
		o.pending[name] = e
		o.used += e.size
	}
	return nil
}

// Report converts r into a DeviceEvent and records it durably before it
// returns: the record file and its directory entry are fsynced. A report
// whose (StreamID, Seq) the outbox holds or has delivered is dropped, as
// update.Reporter requires. Report fails with ErrFull when recording r
// would exceed the disk budget, and with a *gitfleetv1.FieldError when r
// does not make a valid event. It never waits for the network.
func (o *Outbox) Report(ctx context.Context, r update.Report) error {
	ev := Event(o.cfg.Device, r)
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("record event %d: %w", r.Seq, err)
	}
	payload, err := marshalEvent(ev)
	if err != nil {
		return fmt.Errorf("record event %d: %w", r.Seq, err)
	}
	b := encodeRecord(payload)
	name := recordName(r.StreamID, r.Seq)

	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Seq <= o.deliveredSeq(r.StreamID) || o.pending[name] != nil {
		o.log.Debug("outbox: dropping an event it already has", "state", r.To, "seq", r.Seq)
		return nil
	}
	size := blocks(len(b))
	if o.used+size > o.cfg.MaxBytes {
		return fmt.Errorf("record event %d: %w: %d events (%d bytes) wait for the broker, and the budget is %d bytes",
			r.Seq, ErrFull, len(o.pending), o.used, o.cfg.MaxBytes)
	}
	if err := atomicfile.Write(filepath.Join(o.cfg.Dir, name), b, 0o600); err != nil {
		return fmt.Errorf("record event %d: %w", r.Seq, err)
	}
	o.pending[name] = &entry{name: name, stream: r.StreamID, seq: r.Seq, time: r.Time, payload: payload, size: size}
	o.used += size
	o.signal()
	return nil
}

// Event returns the DeviceEvent that reports r for device. A failure code
// that is not an ErrorCode name becomes ERROR_CODE_INTERNAL, with the name
// kept at the start of the message.
func Event(device string, r update.Report) *gitfleetv1.DeviceEvent {
	ev := &gitfleetv1.DeviceEvent{
		DeviceId:     device,
		StreamId:     r.StreamID,
		Sequence:     r.Seq,
		BootId:       r.BootID,
		Time:         timestamppb.New(r.Time),
		FromState:    string(r.From),
		ToState:      string(r.To),
		Version:      r.Release.Version,
		BundleDigest: r.Release.Digest,
	}
	if r.Done > 0 || r.Total > 0 {
		ev.Progress = &gitfleetv1.Progress{DoneBytes: uint64(max(r.Done, 0)), TotalBytes: uint64(max(r.Total, 0))}
	}
	if f := r.Error; f != nil {
		code, ok := gitfleetv1.ErrorCode_value[f.Code]
		msg := f.Message
		if !ok || code == 0 {
			code, msg = int32(gitfleetv1.ErrorCode_ERROR_CODE_INTERNAL), f.Code+": "+f.Message
		}
		ev.Error = &gitfleetv1.Error{Code: gitfleetv1.ErrorCode(code), Message: gitfleetv1.CleanText(msg)}
	}
	return ev
}

// marshalEvent serializes ev as it is recorded and published.
func marshalEvent(ev *gitfleetv1.DeviceEvent) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(ev)
}

// Pending returns how many events wait for the broker.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// next returns the event to send first, or nil if none waits: the oldest
// stream's lowest sequence. Streams are ordered by their oldest waiting
// event's time; the server numbers each stream on its own, so only the
// order within a stream matters to it.
func (o *Outbox) next() *entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	first := map[string]*entry{}
	for _, e := range o.pending {
		if f := first[e.stream]; f == nil || e.seq < f.seq {
			first[e.stream] = e
		}
	}
	var best *entry
	for _, e := range first {
		if best == nil || cmp.Or(e.time.Compare(best.time), cmp.Compare(e.stream, best.stream)) < 0 {
			best = e
		}
	}
	return best
}

// ack records that the broker acknowledged e: first the delivery mark,
// atomically, then the removal of the record. A power cut between the two
// leaves a record that Open recognizes as delivered and removes.
func (o *Outbox) ack(e *entry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	marks := slices.DeleteFunc(slices.Clone(o.delivered), func(m mark) bool { return m.Stream == e.stream })
	marks = append(marks, mark{Stream: e.stream, Seq: max(e.seq, o.deliveredSeq(e.stream))})
	if len(marks) > maxStreams {
		marks = marks[len(marks)-maxStreams:]
	}
	b, err := json.Marshal(marks)
	if err != nil {
		return fmt.Errorf("mark event %d delivered: %w", e.seq, err)
	}
	if err := atomicfile.Write(filepath.Join(o.cfg.Dir, deliveredName), b, 0o600); err != nil {
		return fmt.Errorf("mark event %d delivered: %w", e.seq, err)
	}
	o.delivered = marks
	if err := os.Remove(filepath.Join(o.cfg.Dir, e.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The mark already makes the record count as delivered.
		o.log.Warn("outbox: remove a delivered event", "seq", e.seq, "err", err)
	}
	delete(o.pending, e.name)
	o.used -= e.size
	return nil
}

// deliveredSeq returns the highest acknowledged sequence of stream, or 0.
// o.mu must be held (or o not yet shared).
func (o *Outbox) deliveredSeq(stream string) uint64 {
	for _, m := range o.delivered {
		if m.Stream == stream {
			return m.Seq
		}
	}
	return 0
}

// signal wakes the sender.
func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// blocks returns n rounded up to whole filesystem blocks.
func blocks(n int) int64 {
	return (int64(n) + blockSize - 1) / blockSize * blockSize
}
