package store

import (
	"context"
	"encoding/json"
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
	// Labels are the labels the device reports (agent.yaml device.labels),
	// which fleet.yaml's label selectors match; nil when it reports none.
	Labels map[string]string
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
	var checks, labels string
	var status, seen, first int64
	err := sc.Scan(&d.ID, &d.Fleet, &d.DeviceType, &d.Channel, &d.AgentVersion, &d.BootID, &d.BootedSlot,
		&d.ActiveSlot, &d.Version, &d.Tag, &d.Commit, &d.BundleDigest, &d.BootConfirmed, &d.UpdateState,
		&d.TargetVersion, &d.TargetBundleDigest, &d.DoneBytes, &d.TotalBytes, &d.HealthOK, &checks,
		&d.ErrorCode, &d.ErrorMessage, &d.Online, &status, &seen, &first, &labels)
	if err != nil {
		return Device{}, err
	}
	if err := json.Unmarshal([]byte(checks), &d.HealthChecks); err != nil {
		return Device{}, fmt.Errorf("decode health checks of %s: %w", d.ID, err)
	}
	if len(d.HealthChecks) == 0 {
		d.HealthChecks = nil
	}
	if err := json.Unmarshal([]byte(labels), &d.Labels); err != nil {
		return Device{}, fmt.Errorf("decode labels of %s: %w", d.ID, err)
	}
	if len(d.Labels) == 0 {
		d.Labels = nil
	}
	d.StatusTime = fromMicros(status)
	d.LastSeen = fromMicros(seen)
	d.FirstSeen = fromMicros(first)
	return d, nil
}
