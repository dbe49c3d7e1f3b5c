package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordFailure counts one more failure of device to install release (a
// version), and returns how many it has now. Concurrent calls each count.
func (s *Store) RecordFailure(ctx context.Context, device, release string) (int, error) {
	var n int
	err := s.writer().queryRow(ctx, `INSERT INTO penalties (device_id, release_version, failures, last_failure_at)
VALUES (?, ?, 1, ?)
ON CONFLICT (device_id, release_version) DO UPDATE SET failures = penalties.failures + 1,
	last_failure_at = excluded.last_failure_at
RETURNING failures`, device, release, micros(s.now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("record failure of %s to install %s: %w", device, release, err)
	}
	return n, nil
}

// Failures returns how often device failed to install release since its
// penalty was last cleared: 0 if it never did.
func (s *Store) Failures(ctx context.Context, device, release string) (int, error) {
	var n int
	err := s.reader().queryRow(ctx, "SELECT failures FROM penalties WHERE device_id = ? AND release_version = ?",
		device, release).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read failures of %s to install %s: %w", device, release, err)
	}
	return n, nil
}

// A Penalty is how often a device failed to install a release since its
// penalty was last cleared, and when it last did; and whether the rollout
// controller ordered it to retry the release since, at which count.
type Penalty struct {
	Failures int
	Last     time.Time
	// RetriedAt is the Failures count at which a retry was last ordered
	// (RecordRetry), valid when Retried.
	RetriedAt int
	Retried   bool
}

// ReleaseFailures returns, for every device that failed to install release
// since its penalty was last cleared, how often and when last. Devices that
// never did are not in the map. One query serves a rollout step of a whole
// channel.
func (s *Store) ReleaseFailures(ctx context.Context, release string) (map[string]Penalty, error) {
	type failures struct {
		device string
		p      Penalty
	}
	rows, err := queryAll(ctx, s.reader(), func(sc scanner) (failures, error) {
		var f failures
		var last int64
		var retried sql.NullInt64
		err := sc.Scan(&f.device, &f.p.Failures, &last, &retried)
		f.p.Last = fromMicros(last)
		f.p.RetriedAt, f.p.Retried = int(retried.Int64), retried.Valid
		return f, err
	}, "SELECT device_id, failures, last_failure_at, retried_at FROM penalties WHERE release_version = ?", release)
	if err != nil {
		return nil, fmt.Errorf("read failures to install %s: %w", release, err)
	}
	out := make(map[string]Penalty, len(rows))
	for _, f := range rows {
		out[f.device] = f.p
	}
	return out, nil
}

// RecordRetry records that device was ordered to retry release when it had
// failed it failures times. A device with no failures of release has
// nothing to record it on: that is an error.
func (s *Store) RecordRetry(ctx context.Context, device, release string, failures int) error {
	n, err := s.writer().update(ctx, "UPDATE penalties SET retried_at = ? WHERE device_id = ? AND release_version = ?",
		failures, device, release)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: no failures recorded", ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("record retry of %s for %s: %w", device, release, err)
	}
	return nil
}

// ClearPenalty forgets the failures of device to install release, so that it
// is offered the release again. Clearing a device with none is not an error.
func (s *Store) ClearPenalty(ctx context.Context, device, release string) error {
	_, err := s.writer().exec(ctx, "DELETE FROM penalties WHERE device_id = ? AND release_version = ?", device, release)
	if err != nil {
		return fmt.Errorf("clear penalty of %s for %s: %w", device, release, err)
	}
	return nil
}
