package api

import (
	"encoding/base64"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/store"
)

// devices answers GET /api/v1/devices: a page of the devices the query's
// filters match, in id order.
func (s *Server) devices(_ http.ResponseWriter, r *http.Request) (any, error) {
	q, err := apiclient.ParseDeviceQuery(r.URL.Query())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	after, err := decodeCursor("after", q.After)
	if err != nil {
		return nil, err
	}
	page, err := s.cfg.Store.Devices(r.Context(), store.DeviceQuery{
		DeviceFilter: store.DeviceFilter{
			Fleet: q.Fleet, Channel: q.Channel, Version: q.Version, Tag: q.Tag, Commit: q.Commit,
			State: q.State, Healthy: q.Healthy, Confirmed: q.Confirmed, Online: q.Online, Labels: q.Labels,
		},
		After: after,
		Limit: q.Limit,
	})
	if err != nil {
		return nil, err
	}
	out := apiclient.DevicePage{Devices: make([]apiclient.Device, len(page.Devices)), Next: encodeCursor(page.Next)}
	for i, d := range page.Devices {
		out.Devices[i] = deviceOf(d)
	}
	return out, nil
}

// device answers GET /api/v1/devices/{id}.
func (s *Server) device(_ http.ResponseWriter, r *http.Request) (any, error) {
	d, err := s.cfg.Store.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, notFound(err, "device", r.PathValue("id"))
	}
	return deviceOf(d), nil
}

// clearPenalty answers POST /api/v1/devices/{id}/clear-penalty: it forgets
// the device's failures to install a release, so the rollout's next step
// lets it out of the penalty box and offers it the release again.
func (s *Server) clearPenalty(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	var body apiclient.PenaltyClear
	if err := readJSON(w, r, &body); err != nil {
		return nil, err
	}
	version := strings.TrimPrefix(body.Release, "v")
	switch {
	case version == "":
		return nil, badRequest("release: name the release whose failures to forget, e.g. 1.5.0")
	case strings.ContainsAny(body.Reason, "\r\n"):
		return nil, badRequest("reason: give one line")
	}
	d, err := s.cfg.Store.Device(r.Context(), id)
	if err != nil {
		return nil, notFound(err, "device", id)
	}
	rel, err := s.cfg.Store.Release(r.Context(), version)
	if err != nil {
		return nil, notFound(err, "release", version)
	}
	// The ingest counts failures by the bundle a device was offered.
	if err := s.cfg.Store.ClearPenalty(r.Context(), id, rel.BundleDigest); err != nil {
		return nil, err
	}
	s.log.Info("penalty cleared", "device", id, "release", version, "by", infoOf(r).token, "reason", body.Reason)
	return deviceOf(d), nil
}

// events answers GET /api/v1/devices/{id}/events: a page of the device's
// events, newest first. An unknown device is not found, rather than a device
// without events.
func (s *Server) events(_ http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	q, err := apiclient.ParseEventQuery(r.URL.Query())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	before, err := decodeCursor("before", q.Before)
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.Store.Device(r.Context(), id); err != nil {
		return nil, notFound(err, "device", id)
	}
	page, err := s.cfg.Store.Events(r.Context(), store.EventQuery{DeviceID: id, Before: before, Limit: q.Limit})
	if err != nil {
		// A cursor the caller made up lands here too: the store has no
		// sentinel error for one.
		return nil, err
	}
	out := apiclient.EventPage{Events: make([]apiclient.Event, len(page.Events)), Next: encodeCursor(page.Next)}
	for i, e := range page.Events {
		out.Events[i] = eventOf(e)
	}
	return out, nil
}

// Cursors are the store's, in unpadded URL-safe base64: opaque to callers,
// who must not build them, and safe in a query string as they are.

func encodeCursor(c string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c))
}

func decodeCursor(param, c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", badRequest("query parameter %s=%q is not a cursor: pass the next of the previous page", param, c)
	}
	return string(b), nil
}

func deviceOf(d store.Device) apiclient.Device {
	out := apiclient.Device{
		ID: d.ID, Fleet: d.Fleet, DeviceType: d.DeviceType, Channel: d.Channel, AgentVersion: d.AgentVersion,
		BootID: d.BootID, BootedSlot: d.BootedSlot, ActiveSlot: d.ActiveSlot,
		Version: d.Version, Tag: d.Tag, Commit: d.Commit, BundleDigest: d.BundleDigest, Confirmed: d.BootConfirmed,
		State:      d.UpdateState,
		Health:     apiclient.Health{OK: d.HealthOK, Checks: make([]apiclient.HealthCheck, len(d.HealthChecks))},
		Online:     d.Online,
		Labels:     map[string]string{},
		StatusTime: utc(d.StatusTime), LastSeen: utc(d.LastSeen), FirstSeen: utc(d.FirstSeen),
	}
	maps.Copy(out.Labels, d.Labels)
	for i, c := range d.HealthChecks {
		out.Health.Checks[i] = apiclient.HealthCheck(c)
	}
	if d.TargetVersion != "" || d.TargetBundleDigest != "" {
		out.Target = &apiclient.Target{Version: d.TargetVersion, BundleDigest: d.TargetBundleDigest, DoneBytes: d.DoneBytes, TotalBytes: d.TotalBytes}
	}
	if d.ErrorCode != "" || d.ErrorMessage != "" {
		out.Error = &apiclient.DeviceError{Code: d.ErrorCode, Message: d.ErrorMessage}
	}
	return out
}

func eventOf(e store.Event) apiclient.Event {
	out := apiclient.Event{
		DeviceID: e.DeviceID, StreamID: e.StreamID, Sequence: e.Sequence, BootID: e.BootID,
		From: e.FromState, To: e.ToState, Version: e.Version, BundleDigest: e.BundleDigest,
		DoneBytes: e.DoneBytes, TotalBytes: e.TotalBytes, Time: utc(e.Time), Received: utc(e.Received),
	}
	if e.ErrorCode != "" || e.ErrorMessage != "" {
		out.Error = &apiclient.DeviceError{Code: e.ErrorCode, Message: e.ErrorMessage}
	}
	return out
}

// utc returns t in UTC, so that every time in the API reads alike whatever
// the server's zone.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
