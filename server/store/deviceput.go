package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Writing statuses.
//
// A fleet's statuses are most of what the database takes in: every device
// sends one at each heartbeat and at every step of an update. Each is written
// by one of two statements, a batch of devices at a time:
//
//   - touchDevices updates in place the devices whose status leaves the
//     device list's filter columns (statusColumn.filter) as they were — a
//     heartbeat, a download's progress, a health message — and so writes no
//     index.
//   - upsertDevices writes the others, new devices included, and the nine
//     filter indexes with them.
//
// Both keep the latest status of a device by its own clock (newerStatus), not
// the last to arrive: with a shared subscription, two replicas may store one
// device's statuses out of order.

// A statusColumn is a column of devices that a status writes.
type statusColumn struct {
	name   string
	typ    string // the SQL type; PostgreSQL cannot infer it in a VALUES list
	filter bool   // a filter of the device list, and so indexed
}

// statusColumns are the columns of a written status, in the order of
// deviceValues.
var statusColumns = []statusColumn{
	{"id", "TEXT", false}, {"fleet", "TEXT", true}, {"device_type", "TEXT", false}, {"channel", "TEXT", true},
	{"agent_version", "TEXT", false}, {"boot_id", "TEXT", false}, {"booted_slot", "TEXT", false},
	{"active_slot", "TEXT", false}, {"version", "TEXT", true}, {"tag", "TEXT", true}, {"commit_id", "TEXT", true},
	{"bundle_digest", "TEXT", false}, {"boot_confirmed", "BOOLEAN", true}, {"update_state", "TEXT", true},
	{"target_version", "TEXT", false}, {"target_bundle_digest", "TEXT", false}, {"progress_done", "BIGINT", false},
	{"progress_total", "BIGINT", false}, {"health_ok", "BOOLEAN", true}, {"health_checks", "TEXT", false},
	{"error_code", "TEXT", false}, {"error_message", "TEXT", false}, {"online", "BOOLEAN", true},
	{"status_time", "BIGINT", false}, {"last_seen", "BIGINT", false}, {"first_seen", "BIGINT", false},
	{"labels", "TEXT", false},
}

// deviceColumns are the names of statusColumns, for SELECT and INSERT.
var deviceColumns = func() string {
	names := make([]string, len(statusColumns))
	for i, c := range statusColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}()

// reorderWindow bounds how late a status may arrive and still be judged by
// the device's clock. Statuses delivered out of order arrive within seconds
// of each other. A device whose clock went back — a board without a
// battery-backed clock, before NTP set it — would otherwise not be heard
// until its clock passed the last status it sent: after reorderWindow
// without a status written, the next one is written whatever its time.
const reorderWindow = time.Minute

// newerStatus is the condition under which the status in row "new" replaces
// the stored one in devices: it is not older by the device's clock, it has no
// time (a device without a clock is kept by arrival), or the stored one was
// received more than reorderWindow before it.
func newerStatus(new string) string {
	return fmt.Sprintf("(%[1]s.status_time >= devices.status_time OR %[1]s.status_time = 0 OR %[1]s.last_seen > devices.last_seen + %[2]d)",
		new, reorderWindow.Microseconds())
}

// putChunk is how many devices one statement writes at most, a power of
// two. A batch is written in chunks of putChunk and then of smaller powers
// of two, so that a few statements, prepared once, serve every batch size:
// their texts are long, and parsing them for each batch would cost more
// than running them.
const putChunk = 64

// putStatements are the writer's prepared statements of PutDevices, by the
// number of rows they write: touch[k] and upsert[k] write 1<<k.
type putStatements struct {
	touch, upsert []*sql.Stmt
}

// putStatements returns the statements of PutDevices, prepared the first
// time. It must not be called in a transaction: on SQLite, the transaction
// holds the writer's one connection, which preparing needs.
func (s *Store) putStatements(ctx context.Context) (*putStatements, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if s.put != nil {
		return s.put, nil
	}
	ps := &putStatements{}
	for n := 1; n <= putChunk; n *= 2 {
		for _, st := range []struct {
			list *[]*sql.Stmt
			text string
		}{{&ps.touch, touchDevices(n)}, {&ps.upsert, upsertDevices(n)}} {
			stmt, err := s.db.PrepareContext(ctx, s.writer().rebind(st.text))
			if err != nil {
				return nil, errors.Join(fmt.Errorf("prepare the statements of a batch of %d statuses: %w", n, err), ps.close())
			}
			*st.list = append(*st.list, stmt)
		}
	}
	s.put = ps
	return ps, nil
}

func (ps *putStatements) close() error {
	var err error
	for _, st := range slices.Concat(ps.touch, ps.upsert) {
		err = errors.Join(err, st.Close())
	}
	return err
}

// valuesRows returns n rows of placeholders for statusColumns, typed.
func valuesRows(n int) string {
	var row strings.Builder
	row.WriteByte('(')
	for i, c := range statusColumns {
		if i > 0 {
			row.WriteString(", ")
		}
		if c.typ == "TEXT" {
			row.WriteByte('?')
		} else {
			fmt.Fprintf(&row, "CAST(? AS %s)", c.typ)
		}
	}
	row.WriteByte(')')
	return strings.TrimSuffix(strings.Repeat(row.String()+",\n", n), ",\n")
}

// upsertDevices returns the statement that writes n statuses, adding the
// devices that are new and keeping the first_seen of the others, and
// returns the id of each device it wrote.
func upsertDevices(n int) string {
	var set []string
	for _, c := range statusColumns[1:] {
		if c.name != "first_seen" {
			set = append(set, c.name+" = excluded."+c.name)
		}
	}
	return "INSERT INTO devices (" + deviceColumns + ") VALUES\n" + valuesRows(n) +
		"\nON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", ") +
		"\nWHERE " + newerStatus("excluded") + "\nRETURNING id"
}

// touchDevices returns the statement that writes n statuses of known
// devices whose filter columns they leave as they are, and returns the id of
// each device it wrote.
func touchDevices(n int) string {
	var set, same []string
	for _, c := range statusColumns[1:] {
		switch {
		case c.filter:
			same = append(same, "devices."+c.name+" = s."+c.name)
		case c.name != "first_seen":
			set = append(set, c.name+" = s."+c.name)
		}
	}
	return "WITH s (" + deviceColumns + ") AS (VALUES\n" + valuesRows(n) + ")\nUPDATE devices SET " + strings.Join(set, ", ") +
		"\nFROM s WHERE devices.id = s.id AND " + strings.Join(same, " AND ") + " AND " + newerStatus("s") +
		"\nRETURNING devices.id"
}

// deviceValues returns d's values for statusColumns.
func deviceValues(d Device, now time.Time) ([]any, error) {
	if d.ID == "" {
		return nil, errors.New("device has no id")
	}
	checks, err := jsonText(nonNil(d.HealthChecks))
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.ID, err)
	}
	labels := d.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	labelText, err := jsonText(labels) // names sorted: an unchanged status writes the same text
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", d.ID, err)
	}
	seen := d.LastSeen
	if seen.IsZero() {
		seen = now
	}
	return []any{d.ID, d.Fleet, d.DeviceType, d.Channel, d.AgentVersion, d.BootID, d.BootedSlot, d.ActiveSlot,
		d.Version, d.Tag, d.Commit, d.BundleDigest, d.BootConfirmed, d.UpdateState, d.TargetVersion,
		d.TargetBundleDigest, d.DoneBytes, d.TotalBytes, d.HealthOK, checks, d.ErrorCode, d.ErrorMessage,
		d.Online, micros(d.StatusTime), micros(seen), micros(seen), labelText}, nil
}

// PutDevice records d's status as PutDevices does.
func (s *Store) PutDevice(ctx context.Context, d Device) error {
	_, err := s.PutDevices(ctx, []Device{d})
	return err
}

// PutDevices records the statuses of ds in one transaction, all or none,
// adding the devices that are new. A status replaces every status field of
// its device: give it full statuses, not last wills (see SetOnline). A zero
// LastSeen means now.
//
// Of a device's statuses the store keeps the latest by the device's clock
// (StatusTime), not the last to arrive. A status older than the stored one is
// not written, and PutDevices returns its device's id in stale, unless the
// stored one arrived (LastSeen) over a minute before it: then the device's
// clock went back, and arrival decides. A status without a StatusTime is
// always written. ds may hold several statuses of one device; they are
// judged in turn.
func (s *Store) PutDevices(ctx context.Context, ds []Device) (stale []string, err error) {
	now := s.now()
	rows := make([][]any, len(ds))
	for i, d := range ds {
		if rows[i], err = deviceValues(d, now); err != nil {
			return nil, fmt.Errorf("put %d devices: %w", len(ds), err)
		}
	}
	ps, err := s.putStatements(ctx)
	if err != nil {
		return nil, err
	}
	put := func(c conn) error {
		stale = stale[:0]
		for _, round := range rounds(ds) {
			st, err := ps.putRound(ctx, c, rows, round)
			if err != nil {
				return err
			}
			stale = append(stale, st...)
		}
		return nil
	}
	err = s.inTx(ctx, put)
	if err != nil {
		return nil, fmt.Errorf("put %d devices: %w", len(ds), err)
	}
	return stale, nil
}

// rounds splits the indexes of ds into rounds in which each device appears
// once, in order: a statement may not write one row twice.
func rounds(ds []Device) [][]int {
	seen := make(map[string]int, len(ds)) // id → rounds it is in
	var out [][]int
	for i, d := range ds {
		r := seen[d.ID]
		seen[d.ID] = r + 1
		if r == len(out) {
			out = append(out, make([]int, 0, len(ds)))
		}
		out[r] = append(out[r], i)
	}
	return out
}

// putRound writes the statuses rows[i] for i in round, devices all
// different, and returns the ids of those it did not write.
func (ps *putStatements) putRound(ctx context.Context, c conn, rows [][]any, round []int) ([]string, error) {
	written := make(map[string]bool, len(round))
	// Most statuses change no filter column; the others, and new devices,
	// are upserted.
	if err := putChunks(ctx, c, ps.touch, rows, round, written); err != nil {
		return nil, fmt.Errorf("touch: %w", err)
	}
	rest := make([]int, 0, len(round)-len(written))
	for _, i := range round {
		if !written[rows[i][0].(string)] {
			rest = append(rest, i)
		}
	}
	if err := putChunks(ctx, c, ps.upsert, rows, rest, written); err != nil {
		return nil, fmt.Errorf("upsert: %w", err)
	}
	var stale []string
	for _, i := range rest {
		if id := rows[i][0].(string); !written[id] {
			stale = append(stale, id)
		}
	}
	return stale, nil
}

// putChunks runs the statements of stmts (stmts[k] writes 1<<k rows) in c on
// the rows of indexes, and records in written the ids they return.
func putChunks(ctx context.Context, c conn, stmts []*sql.Stmt, rows [][]any, indexes []int, written map[string]bool) error {
	args := make([]any, 0, min(len(indexes), putChunk)*len(statusColumns))
	for len(indexes) > 0 {
		k := bits.Len(uint(min(len(indexes), putChunk))) - 1 // the largest power of two in it
		n := 1 << k
		args = args[:0]
		for _, i := range indexes[:n] {
			args = append(args, rows[i]...)
		}
		indexes = indexes[n:]
		res, err := c.stmt(ctx, stmts[k]).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		for res.Next() {
			var id string
			if err := res.Scan(&id); err != nil {
				res.Close()
				return err
			}
			written[id] = true
		}
		if err := res.Close(); err != nil {
			return err
		}
		if err := res.Err(); err != nil {
			return err
		}
	}
	return nil
}
