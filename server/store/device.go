package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Device is a device and the last status it reported. The status fields have
// the meanings of the same fields of gitfleetv1.DeviceStatus.
type Device struct {
	ID           string
	Fleet        string
	DeviceType   string
	Channel      string
	AgentVersion string
	BootID       string
	// BootedSlot is the slot the device runs; ActiveSlot the one its
	// bootloader boots next.
	BootedSlot string
	ActiveSlot string
	// Version, Tag, Commit and BundleDigest describe the release in
	// BootedSlot.
	Version       string
	Tag           string
	Commit        string
	BundleDigest  string
	BootConfirmed bool
	UpdateState   string
	// TargetVersion and TargetBundleDigest name the release being installed,
	// if any, and Progress counts its bytes.
	TargetVersion      string
	TargetBundleDigest string
	DoneBytes          int64
	TotalBytes         int64
	HealthOK           bool
	HealthChecks       []HealthCheck
	// ErrorCode (a gitfleetv1.ErrorCode name) and ErrorMessage are the error
	// that ended the latest update, if it failed.
	ErrorCode    string
	ErrorMessage string
	Online       bool
	// StatusTime is when the device took its status, by its own clock.
	StatusTime time.Time
	// LastSeen is when the server received the status; FirstSeen when it
	// received the device's first, which the store keeps: PutDevice ignores
	// the FirstSeen it is given.
	LastSeen  time.Time
	FirstSeen time.Time
}

// HealthCheck is the result of one of a device's health checks.
type HealthCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// deviceColumns are the columns a status writes, in the order of
// deviceValues, and then first_seen.
const deviceColumns = `id, fleet, device_type, channel, agent_version, boot_id, booted_slot, active_slot,
	version, tag, commit_id, bundle_digest, boot_confirmed, update_state, target_version, target_bundle_digest,
	progress_done, progress_total, health_ok, health_checks, error_code, error_message, online,
	status_time, last_seen, first_seen`

// putDevice replaces every status column of a known device and keeps its
// first_seen.
const putDevice = `INSERT INTO devices (` + deviceColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET fleet = excluded.fleet, device_type = excluded.device_type,
	channel = excluded.channel, agent_version = excluded.agent_version, boot_id = excluded.boot_id,
	booted_slot = excluded.booted_slot, active_slot = excluded.active_slot, version = excluded.version,
	tag = excluded.tag, commit_id = excluded.commit_id, bundle_digest = excluded.bundle_digest,
	boot_confirmed = excluded.boot_confirmed, update_state = excluded.update_state,
	target_version = excluded.target_version, target_bundle_digest = excluded.target_bundle_digest,
	progress_done = excluded.progress_done, progress_total = excluded.progress_total,
	health_ok = excluded.health_ok, health_checks = excluded.health_checks,
	error_code = excluded.error_code, error_message = excluded.error_message, online = excluded.online,
	status_time = excluded.status_time, last_seen = excluded.last_seen`

// deviceValues returns d's values for putDevice.
func deviceValues(d Device, now time.Time) ([]any, error) {
	if d.ID == "" {
		return nil, errors.New("device has no id")
	}
	checks, err := jsonText(nonNil(d.HealthChecks))
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
		d.Online, micros(d.StatusTime), micros(seen), micros(seen)}, nil
}

// PutDevice records d's status, adding the device if it is new. It replaces
// every status field: give it a full status, not a last will (see
// SetOnline). A zero LastSeen means now.
func (s *Store) PutDevice(ctx context.Context, d Device) error {
	args, err := deviceValues(d, s.now())
	if err != nil {
		return fmt.Errorf("put device: %w", err)
	}
	if _, err := s.writer().exec(ctx, putDevice, args...); err != nil {
		return fmt.Errorf("put device %s: %w", d.ID, err)
	}
	return nil
}

// PutDevices records the statuses of ds as PutDevice does, in one
// transaction: all or none. Batching statuses saves a commit each.
func (s *Store) PutDevices(ctx context.Context, ds []Device) error {
	now := s.now()
	err := s.inTx(ctx, func(c conn) error {
		stmt, err := c.prepare(ctx, putDevice)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range ds {
			args, err := deviceValues(d, now)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put %d devices: %w", len(ds), err)
	}
	return nil
}

// SetOnline records whether device id is online, leaving the rest of its
// status as it was: for a last will, which says only that. It returns
// ErrNotFound for a device that never reported a status.
func (s *Store) SetOnline(ctx context.Context, id string, online bool) error {
	n, err := s.writer().update(ctx, "UPDATE devices SET online = ? WHERE id = ?", online, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set device %s online=%t: %w", id, online, err)
	}
	return nil
}

// Device returns device id, or ErrNotFound.
func (s *Store) Device(ctx context.Context, id string) (Device, error) {
	row := s.reader().queryRow(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = ?", id)
	d, err := scanDevice(row)
	if err != nil {
		return Device{}, fmt.Errorf("read device %s: %w", id, notFound(err))
	}
	return d, nil
}

// scanDevice reads deviceColumns.
func scanDevice(sc scanner) (Device, error) {
	var d Device
	var checks string
	var status, seen, first int64
	err := sc.Scan(&d.ID, &d.Fleet, &d.DeviceType, &d.Channel, &d.AgentVersion, &d.BootID, &d.BootedSlot,
		&d.ActiveSlot, &d.Version, &d.Tag, &d.Commit, &d.BundleDigest, &d.BootConfirmed, &d.UpdateState,
		&d.TargetVersion, &d.TargetBundleDigest, &d.DoneBytes, &d.TotalBytes, &d.HealthOK, &checks,
		&d.ErrorCode, &d.ErrorMessage, &d.Online, &status, &seen, &first)
	if err != nil {
		return Device{}, err
	}
	if err := json.Unmarshal([]byte(checks), &d.HealthChecks); err != nil {
		return Device{}, fmt.Errorf("decode health checks of %s: %w", d.ID, err)
	}
	if len(d.HealthChecks) == 0 {
		d.HealthChecks = nil
	}
	d.StatusTime = fromMicros(status)
	d.LastSeen = fromMicros(seen)
	d.FirstSeen = fromMicros(first)
	return d, nil
}
