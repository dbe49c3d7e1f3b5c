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

// AdvanceWave moves channel name's rollout of release from wave from to the
// next, and reports whether it did. It does only if the rollout is Active and
// still at that release and wave, so that of replicas deciding at once one
// advances the wave, and a pause or promotion that came in between wins.
func (s *Store) AdvanceWave(ctx context.Context, name, release string, from int) (bool, error) {
	now := micros(s.now())
	n, err := s.writer().update(ctx, `UPDATE channels SET wave = ?, wave_started_at = ?, updated_at = ?
WHERE name = ? AND release_version = ? AND wave = ? AND state = 'ACTIVE'`, from+1, now, now, name, release, from)
	if err != nil {
		return false, fmt.Errorf("advance %s rollout of %s past wave %d: %w", name, release, from, err)
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
