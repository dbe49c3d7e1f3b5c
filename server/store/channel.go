package store

import (
	"context"
	"fmt"
	"time"
)

// RolloutState says whether a channel's rollout goes on.
type RolloutState string

const (
	// Active rollouts advance wave by wave.
	Active RolloutState = "ACTIVE"
	// Paused rollouts stay at their wave until an operator resumes them.
	Paused RolloutState = "PAUSED"
	// Aborted rollouts were stopped by an operator: devices that have not
	// installed the release do not.
	Aborted RolloutState = "ABORTED"
	// Halted rollouts were stopped by the rollout engine, because too many
	// devices failed the release.
	Halted RolloutState = "HALTED"
)

// Channel is the rollout state of a channel.
type Channel struct {
	Name string
	// Release is the version of the release the channel rolls out.
	Release string
	// Wave is the index of the wave the rollout is at, from 0.
	Wave  int
	State RolloutState
	// Reason says, for people, why the rollout is in its state.
	Reason string
	// WaveStarted is when Wave began; Updated when anything last changed.
	WaveStarted time.Time
	Updated     time.Time
	// Engine is the rollout engine's own state of the channel, opaque to
	// the store (JSON of server/rollout.Rollout).
	Engine string
}

const channelColumns = `name, release_version, wave, state, reason, wave_started_at, updated_at, engine`

// PutChannel records c, replacing the channel's state if it exists: for
// promotion, when the channel's release changes. A zero WaveStarted means
// now. Updated is set to now.
func (s *Store) PutChannel(ctx context.Context, c Channel) error {
	if err := checkRolloutState(c.State); err != nil {
		return fmt.Errorf("put channel %s: %w", c.Name, err)
	}
	now := s.now()
	started := c.WaveStarted
	if started.IsZero() {
		started = now
	}
	_, err := s.writer().exec(ctx, `INSERT INTO channels (`+channelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET release_version = excluded.release_version, wave = excluded.wave,
	state = excluded.state, reason = excluded.reason, wave_started_at = excluded.wave_started_at,
	updated_at = excluded.updated_at, engine = excluded.engine`,
		c.Name, c.Release, c.Wave, string(c.State), c.Reason, micros(started), micros(now), c.Engine)
	if err != nil {
		return fmt.Errorf("put channel %s: %w", c.Name, err)
	}
	return nil
}

// SetRolloutState sets the state of channel name's rollout and the reason
// for it, leaving its release and wave as they are: for pause, resume, abort
// and halt. It returns ErrNotFound for an unknown channel.
func (s *Store) SetRolloutState(ctx context.Context, name string, state RolloutState, reason string) error {
	if err := checkRolloutState(state); err != nil {
		return fmt.Errorf("set rollout state of %s: %w", name, err)
	}
	n, err := s.writer().update(ctx, "UPDATE channels SET state = ?, reason = ?, updated_at = ? WHERE name = ?",
		string(state), reason, micros(s.now()), name)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set rollout state of %s to %s: %w", name, state, err)
	}
	return nil
}

// SwapChannel replaces channel was.Name's rollout with next and reports
// whether it did. It does only if the stored rollout is still was — same
// release, wave, state and engine state — or, for a was never stored (zero
// Updated), only if the channel is still not stored. So of replicas that read
// a channel and decide at once, one writes, and the others' decisions, made on
// what is no longer there, are refused: a wave is never advanced twice or set
// back, and a pause, abort or promotion written in between wins. A zero
// next.WaveStarted means now.
func (s *Store) SwapChannel(ctx context.Context, was, next Channel) (bool, error) {
	if next.Name != was.Name {
		return false, fmt.Errorf("swap channel %s: the new state names channel %q", was.Name, next.Name)
	}
	if err := checkRolloutState(next.State); err != nil {
		return false, fmt.Errorf("swap channel %s: %w", next.Name, err)
	}
	now := s.now()
	started := next.WaveStarted
	if started.IsZero() {
		started = now
	}
	var n int64
	var err error
	if was.Updated.IsZero() {
		n, err = s.writer().update(ctx, `INSERT INTO channels (`+channelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING`,
			next.Name, next.Release, next.Wave, string(next.State), next.Reason, micros(started), micros(now), next.Engine)
	} else {
		n, err = s.writer().update(ctx, `UPDATE channels SET release_version = ?, wave = ?, state = ?, reason = ?,
	wave_started_at = ?, updated_at = ?, engine = ?
WHERE name = ? AND release_version = ? AND wave = ? AND state = ? AND engine = ?`,
			next.Release, next.Wave, string(next.State), next.Reason, micros(started), micros(now), next.Engine,
			was.Name, was.Release, was.Wave, string(was.State), was.Engine)
	}
	if err != nil {
		return false, fmt.Errorf("swap channel %s: %w", next.Name, err)
	}
	return n == 1, nil
}

// Channel returns channel name, or ErrNotFound.
func (s *Store) Channel(ctx context.Context, name string) (Channel, error) {
	row := s.reader().queryRow(ctx, "SELECT "+channelColumns+" FROM channels WHERE name = ?", name)
	c, err := scanChannel(row)
	if err != nil {
		return Channel{}, fmt.Errorf("read channel %s: %w", name, notFound(err))
	}
	return c, nil
}

// Channels returns every channel, by name.
func (s *Store) Channels(ctx context.Context) ([]Channel, error) {
	cs, err := queryAll(ctx, s.reader(), scanChannel, "SELECT "+channelColumns+" FROM channels ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return cs, nil
}

func scanChannel(sc scanner) (Channel, error) {
	var c Channel
	var state string
	var started, updated int64
	if err := sc.Scan(&c.Name, &c.Release, &c.Wave, &state, &c.Reason, &started, &updated, &c.Engine); err != nil {
		return Channel{}, err
	}
	c.State = RolloutState(state)
	c.WaveStarted = fromMicros(started)
	c.Updated = fromMicros(updated)
	return c, nil
}

func checkRolloutState(s RolloutState) error {
	switch s {
	case Active, Paused, Aborted, Halted:
		return nil
	}
	return fmt.Errorf("rollout state %q is not one of %s, %s, %s, %s", s, Active, Paused, Aborted, Halted)
}
