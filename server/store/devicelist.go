package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Page sizes of Devices and Events.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

// pageLimit returns the page size a query asked for as limit: DefaultPage
// for 0 (or less), at most MaxPage.
func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPage
	case limit > MaxPage:
		return MaxPage
	}
	return limit
}

// DeviceFilter selects devices: those that match every field set. An empty
// string or a nil pointer matches any device.
type DeviceFilter struct {
	Fleet   string
	Channel string
	Version string
	Tag     string
	Commit  string
	// State is an update state name, as in Device.UpdateState.
	State     string
	Healthy   *bool
	Confirmed *bool
	Online    *bool
	// Labels selects the devices that report every one of these labels
	// with this value (agent.yaml device.labels).
	Labels map[string]string
}

// where returns f as an SQL condition ("TRUE" when f is empty) and its
// arguments, for PostgreSQL or SQLite.
func (f DeviceFilter) where(postgres bool) (string, []any) {
	var conds []string
	var args []any
	for _, c := range []struct {
		column string
		value  string
	}{
		{"fleet", f.Fleet}, {"channel", f.Channel}, {"version", f.Version}, {"tag", f.Tag},
		{"commit_id", f.Commit}, {"update_state", f.State},
	} {
		if c.value != "" {
			conds = append(conds, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	for _, c := range []struct {
		column string
		value  *bool
	}{
		{"health_ok", f.Healthy}, {"boot_confirmed", f.Confirmed}, {"online", f.Online},
	} {
		if c.value != nil {
			conds = append(conds, c.column+" = ?")
			args = append(args, *c.value)
		}
	}
	// The labels column holds the labels as JSON, encoded by jsonText with
	// names sorted. A label is in it exactly when its own encoding,
	// "name":"value", is: a quote that is not a string's delimiter is
	// escaped, so the text cannot turn up inside another name or value.
	find := "instr(labels, ?) > 0"
	if postgres {
		find = "strpos(labels, ?) > 0"
	}
	for _, name := range slices.Sorted(maps.Keys(f.Labels)) {
		pair, _ := jsonText(map[string]string{name: f.Labels[name]}) // strings always encode
		conds = append(conds, find)
		args = append(args, pair[1:len(pair)-1])
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// DeviceQuery selects one page of the devices a filter matches, in id order.
type DeviceQuery struct {
	DeviceFilter
	// After is the Next of the previous page; empty for the first page.
	After string
	// Limit is how many devices a page holds at most: 0 means DefaultPage,
	// and more than MaxPage means MaxPage.
	Limit int
}

// DevicePage is one page of devices.
type DevicePage struct {
	Devices []Device
	// Next is the After of the next page; empty on the last page.
	Next string
}

// Devices returns the page of devices that q selects. A device added or
// changed while a client pages through shows on a later page if its id is
// after the page the client is at.
func (s *Store) Devices(ctx context.Context, q DeviceQuery) (DevicePage, error) {
	limit := pageLimit(q.Limit)
	where, args := q.where(s.postgres)
	if q.After != "" {
		where += " AND id > ?"
		args = append(args, q.After)
	}
	// One more than a page tells whether there is a next one.
	args = append(args, limit+1)
	ds, err := queryAll(ctx, s.reader(), scanDevice,
		"SELECT "+deviceColumns+" FROM devices WHERE "+where+" ORDER BY id LIMIT ?", args...)
	if err != nil {
		return DevicePage{}, fmt.Errorf("list devices: %w", err)
	}
	p := DevicePage{Devices: ds}
	if len(p.Devices) > limit {
		p.Devices = p.Devices[:limit]
		p.Next = p.Devices[limit-1].ID
	}
	return p, nil
}

// CountDevices returns how many devices f matches.
func (s *Store) CountDevices(ctx context.Context, f DeviceFilter) (int, error) {
	where, args := f.where(s.postgres)
	var n int
	if err := s.reader().queryRow(ctx, "SELECT COUNT(*) FROM devices WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count devices: %w", err)
	}
	return n, nil
}
