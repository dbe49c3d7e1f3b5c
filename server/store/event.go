package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is one event of a device: a transition of its update state machine,
// or an error within a state. The fields have the meanings of the same fields
// of gitfleetv1.DeviceEvent.
type Event struct {
	DeviceID string
	// StreamID and Sequence place the event in the device's event stream:
	// Sequence is 1 for a stream's first event and grows by one an event.
	StreamID  string
	Sequence  uint64
	BootID    string
	FromState string
	ToState   string
	// Version and BundleDigest name the release being installed, if any.
	Version      string
	BundleDigest string
	DoneBytes    int64
	TotalBytes   int64
	// ErrorCode (a gitfleetv1.ErrorCode name) and ErrorMessage are set when
	// the event reports an error.
	ErrorCode    string
	ErrorMessage string
	// Time is when the event happened, by the device's clock; Received when
	// the server stored it. A zero Received means now.
	Time     time.Time
	Received time.Time
}

// Arrival says how an appended event stands to those of its stream stored
// before it.
type Arrival int

const (
	// Next is the event after the newest stored: nothing is missing.
	Next Arrival = iota + 1
	// AfterGap is an event past the one after the newest stored: the events
	// in between (Appended.Missing of them) have not arrived.
	AfterGap
	// Late is an event older than the newest stored, which was missing: it
	// fills one place of a gap reported before. Replicas that share a
	// device's events through a shared subscription can store them out of
	// order, so late is not lost.
	Late
	// Duplicate is an event stored already, which was not stored again.
	Duplicate
)

func (a Arrival) String() string {
	switch a {
	case Next:
		return "next"
	case AfterGap:
		return "after-gap"
	case Late:
		return "late"
	case Duplicate:
		return "duplicate"
	}
	return "Arrival(" + strconv.Itoa(int(a)) + ")"
}

// Appended is what AppendEvent found.
type Appended struct {
	Arrival Arrival
	// Missing is, for AfterGap, how many events before this one have not
	// arrived; 0 otherwise.
	Missing uint64
}

const (
	// lockStream creates the stream's row or locks it with an update that
	// changes nothing, and returns its last sequence.
	lockStream = `INSERT INTO event_streams (device_id, stream_id, last_seq) VALUES (?, ?, 0)
ON CONFLICT (device_id, stream_id) DO UPDATE SET last_seq = event_streams.last_seq
RETURNING last_seq`
	insertEvent = `INSERT INTO device_events (device_id, stream_id, seq, boot_id, event_time, received_at,
	from_state, to_state, version, bundle_digest, progress_done, progress_total, error_code, error_message)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_id, stream_id, seq) DO NOTHING`
	advanceStream = `UPDATE event_streams SET last_seq = ? WHERE device_id = ? AND stream_id = ?`
)

// AppendEvent stores e unless it is stored already, and says how it stands to
// the events of its stream stored before it: the next one, after a gap (and
// how many are missing), late, or a duplicate. A stream's first event is
// after a gap unless its sequence is 1. Replicas appending events of one
// stream at once get answers that add up: each event is new to exactly one of
// them, and the gaps they report are the sequences that never arrived.
func (s *Store) AppendEvent(ctx context.Context, e Event) (Appended, error) {
	as, err := s.AppendEvents(ctx, []Event{e})
	if err != nil {
		return Appended{}, err
	}
	return as[0], nil
}

// AppendEvents appends each of es as AppendEvent does, in order, in one
// transaction: all or none. es may hold several events of one stream, and
// the same event twice; each is judged against those before it, so the
// answers are those of appending them one by one. A fleet's events arrive
// thousands a second, and a transaction each cost more than the events.
func (s *Store) AppendEvents(ctx context.Context, es []Event) ([]Appended, error) {
	for _, e := range es {
		if e.DeviceID == "" || e.StreamID == "" || e.Sequence == 0 || e.Sequence > math.MaxInt64 {
			return nil, fmt.Errorf("append event %d of %s stream %q: device, stream and a sequence in 1..2^63-1 are required",
				e.Sequence, e.DeviceID, e.StreamID)
		}
	}
	now := s.now()
	as := make([]Appended, len(es))
	err := s.inTx(ctx, func(c conn) error {
		stmts, err := prepareAll(ctx, c, lockStream, insertEvent, advanceStream)
		if err != nil {
			return err
		}
		defer closeAll(stmts)
		for _, i := range lockOrder(es) {
			e := es[i]
			if as[i], err = appendEvent(ctx, stmts[0], stmts[1], stmts[2], e, now); err != nil {
				return fmt.Errorf("append event %d of %s stream %s: %w", e.Sequence, e.DeviceID, e.StreamID, err)
			}
		}
		return nil
	})
	if err != nil {
		if len(es) == 1 {
			return nil, err
		}
		return nil, fmt.Errorf("append %d events: %w", len(es), err)
	}
	return as, nil
}

// lockOrder returns the indexes of es by device and stream, in order within
// a stream: replicas whose transactions lock streams in one order wait for
// each other instead of deadlocking.
func lockOrder(es []Event) []int {
	order := make([]int, len(es))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Or(strings.Compare(es[i].DeviceID, es[j].DeviceID), strings.Compare(es[i].StreamID, es[j].StreamID))
	})
	return order
}

// appendEvent appends e in a transaction, with the transaction's prepared
// lockStream, insertEvent and advanceStream.
func appendEvent(ctx context.Context, lock, insert, advance *sql.Stmt, e Event, now time.Time) (Appended, error) {
	received := e.Received
	if received.IsZero() {
		received = now
	}
	seq := int64(e.Sequence)
	// The stream's row is locked first, so that replicas appending to one
	// stream at once take turns from here to the commit.
	var last int64
	if err := lock.QueryRowContext(ctx, e.DeviceID, e.StreamID).Scan(&last); err != nil {
		return Appended{}, fmt.Errorf("lock stream: %w", err)
	}
	res, err := insert.ExecContext(ctx, e.DeviceID, e.StreamID, seq, e.BootID, micros(e.Time), micros(received),
		e.FromState, e.ToState, e.Version, e.BundleDigest, e.DoneBytes, e.TotalBytes, e.ErrorCode, e.ErrorMessage)
	if err != nil {
		return Appended{}, fmt.Errorf("insert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Appended{}, fmt.Errorf("insert: %w", err)
	}
	var a Appended
	switch {
	case n == 0:
		return Appended{Arrival: Duplicate}, nil
	case seq < last:
		return Appended{Arrival: Late}, nil
	case seq == last+1:
		a = Appended{Arrival: Next}
	default:
		a = Appended{Arrival: AfterGap, Missing: uint64(seq - last - 1)}
	}
	if _, err := advance.ExecContext(ctx, seq, e.DeviceID, e.StreamID); err != nil {
		return Appended{}, fmt.Errorf("advance stream: %w", err)
	}
	return a, nil
}

// prepareAll prepares queries in c, a transaction, for the statements run
// once per row of a batch: parsing them once a batch, not once a row.
func prepareAll(ctx context.Context, c conn, queries ...string) ([]*sql.Stmt, error) {
	stmts := make([]*sql.Stmt, 0, len(queries))
	for _, q := range queries {
		st, err := c.prepare(ctx, q)
		if err != nil {
			closeAll(stmts)
			return nil, fmt.Errorf("prepare: %w", err)
		}
		stmts = append(stmts, st)
	}
	return stmts, nil
}

// closeAll closes stmts; a statement of a transaction that ended is closed
// already, and closing it again does nothing.
func closeAll(stmts []*sql.Stmt) {
	for _, st := range stmts {
		st.Close()
	}
}

// EventQuery selects one page of a device's events, newest first: by the
// time the server received them, and within one time by stream and sequence.
type EventQuery struct {
	DeviceID string
	// Before is the Next of the previous page; empty for the first page.
	Before string
	// Limit is how many events a page holds at most: 0 means DefaultPage, and
	// more than MaxPage means MaxPage.
	Limit int
}

// EventPage is one page of a device's events.
type EventPage struct {
	Events []Event
	// Next is the Before of the next page; empty on the last page.
	Next string
}

const eventColumns = `device_id, stream_id, seq, boot_id, event_time, received_at, from_state, to_state,
	version, bundle_digest, progress_done, progress_total, error_code, error_message`

// Events returns the page of a device's events that q selects.
func (s *Store) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	limit := pageLimit(q.Limit)
	where := "device_id = ?"
	args := []any{q.DeviceID}
	if q.Before != "" {
		received, stream, seq, err := parseEventCursor(q.Before)
		if err != nil {
			return EventPage{}, fmt.Errorf("list events of %s: %w", q.DeviceID, err)
		}
		where += " AND (received_at, stream_id, seq) < (?, ?, ?)"
		args = append(args, received, stream, seq)
	}
	args = append(args, limit+1)
	es, err := queryAll(ctx, s.reader(), scanEvent, "SELECT "+eventColumns+" FROM device_events WHERE "+where+
		" ORDER BY received_at DESC, stream_id DESC, seq DESC LIMIT ?", args...)
	if err != nil {
		return EventPage{}, fmt.Errorf("list events of %s: %w", q.DeviceID, err)
	}
	p := EventPage{Events: es}
	if len(p.Events) > limit {
		p.Events = p.Events[:limit]
		last := p.Events[limit-1]
		p.Next = fmt.Sprintf("%d.%d.%s", micros(last.Received), last.Sequence, last.StreamID)
	}
	return p, nil
}

// scanEvent reads eventColumns.
func scanEvent(sc scanner) (Event, error) {
	var e Event
	var seq, at, received int64
	err := sc.Scan(&e.DeviceID, &e.StreamID, &seq, &e.BootID, &at, &received, &e.FromState, &e.ToState,
		&e.Version, &e.BundleDigest, &e.DoneBytes, &e.TotalBytes, &e.ErrorCode, &e.ErrorMessage)
	if err != nil {
		return Event{}, err
	}
	e.Sequence = uint64(seq)
	e.Time = fromMicros(at)
	e.Received = fromMicros(received)
	return e, nil
}

// parseEventCursor reads an EventPage.Next: "RECEIVED.SEQ.STREAM", the
// stream last because it may hold dots.
func parseEventCursor(c string) (received int64, stream string, seq int64, err error) {
	parts := strings.SplitN(c, ".", 3)
	if len(parts) == 3 {
		received, err = strconv.ParseInt(parts[0], 10, 64)
		if err == nil {
			seq, err = strconv.ParseInt(parts[1], 10, 64)
		}
		if err == nil {
			return received, parts[2], seq, nil
		}
	}
	return 0, "", 0, fmt.Errorf("bad cursor %q", c)
}
