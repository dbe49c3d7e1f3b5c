package apiclient

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// MaxLimit is the largest page a list request may ask for; a request that
// asks for none gets DefaultLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// DeviceQuery selects one page of the device list: the devices that match
// every filter set, in id order. An empty string or a nil pointer matches
// any device.
type DeviceQuery struct {
	Fleet   string
	Channel string
	Version string
	Tag     string
	Commit  string
	// State is an update state, as in Device.State.
	State string
	// Healthy selects devices by Health.OK: the parameter health=ok or
	// health=failing.
	Healthy   *bool
	Confirmed *bool
	Online    *bool
	// Labels selects the devices that report every one of these labels
	// with this value: the parameter label=NAME=VALUE, once per label.
	Labels map[string]string
	// After is the DevicePage.Next of the previous page; empty for the first.
	After string
	// Limit is how many devices the page holds at most: 0 means DefaultLimit.
	Limit int
}

// The query parameters of the device list, in the order Values writes them.
var deviceParams = []string{"fleet", "channel", "version", "tag", "commit", "state", "health", "confirmed", "online", "label", "after", "limit"}

// DeviceParams returns the names of the device list's query parameters.
func DeviceParams() []string { return slices.Clone(deviceParams) }

// Values returns q as the query parameters of GET /api/v1/devices.
func (q DeviceQuery) Values() url.Values {
	v := url.Values{}
	for _, p := range []struct{ name, value string }{
		{"fleet", q.Fleet}, {"channel", q.Channel}, {"version", q.Version}, {"tag", q.Tag},
		{"commit", q.Commit}, {"state", q.State}, {"after", q.After},
	} {
		if p.value != "" {
			v.Set(p.name, p.value)
		}
	}
	if q.Healthy != nil {
		v.Set("health", map[bool]string{true: "ok", false: "failing"}[*q.Healthy])
	}
	if q.Confirmed != nil {
		v.Set("confirmed", strconv.FormatBool(*q.Confirmed))
	}
	if q.Online != nil {
		v.Set("online", strconv.FormatBool(*q.Online))
	}
	for _, name := range slices.Sorted(maps.Keys(q.Labels)) {
		v.Add("label", name+"="+q.Labels[name])
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseDeviceQuery returns the DeviceQuery that the query parameters v
// state. It refuses unknown parameters, repeated ones (but label) and
// values out of range, naming the parameter.
func ParseDeviceQuery(v url.Values) (DeviceQuery, error) {
	if err := checkParams(v, deviceParams, "label"); err != nil {
		return DeviceQuery{}, err
	}
	q := DeviceQuery{
		Fleet: v.Get("fleet"), Channel: v.Get("channel"), Version: v.Get("version"), Tag: v.Get("tag"),
		Commit: v.Get("commit"), State: v.Get("state"), After: v.Get("after"),
	}
	var err error
	if q.Healthy, err = parseBool(v, "health", "ok", "failing"); err != nil {
		return DeviceQuery{}, err
	}
	if q.Confirmed, err = parseBool(v, "confirmed", "true", "false"); err != nil {
		return DeviceQuery{}, err
	}
	if q.Online, err = parseBool(v, "online", "true", "false"); err != nil {
		return DeviceQuery{}, err
	}
	if q.Labels, err = parseLabels(v); err != nil {
		return DeviceQuery{}, err
	}
	if q.Limit, err = parseLimit(v); err != nil {
		return DeviceQuery{}, err
	}
	return q, nil
}

// parseLabels parses the label parameters, NAME=VALUE each, spelled as
// devices report them (gitfleetv1.CheckLabel); nil if there are none.
func parseLabels(v url.Values) (map[string]string, error) {
	var labels map[string]string
	for _, l := range v["label"] {
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("query parameter label=%q: give NAME=VALUE", l)
		}
		if err := gitfleetv1.CheckLabel(name, value); err != nil {
			return nil, fmt.Errorf("query parameter label=%q: %v", l, err)
		}
		if _, dup := labels[name]; dup {
			return nil, fmt.Errorf("query parameter label names %s twice: a device has one value of a label", name)
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[name] = value
	}
	return labels, nil
}

// EventQuery selects one page of a device's events, newest first.
type EventQuery struct {
	// Before is the EventPage.Next of the previous page; empty for the
	// first.
	Before string
	// Limit is how many events the page holds at most: 0 means
	// DefaultLimit.
	Limit int
}

var eventParams = []string{"before", "limit"}

// Values returns q as the query parameters of GET
// /api/v1/devices/{id}/events.
func (q EventQuery) Values() url.Values {
	v := url.Values{}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseEventQuery returns the EventQuery that the query parameters v state,
// refusing what ParseDeviceQuery refuses.
func ParseEventQuery(v url.Values) (EventQuery, error) {
	if err := checkParams(v, eventParams); err != nil {
		return EventQuery{}, err
	}
	limit, err := parseLimit(v)
	if err != nil {
		return EventQuery{}, err
	}
	return EventQuery{Before: v.Get("before"), Limit: limit}, nil
}

// checkParams refuses parameters not in known, and any but repeatable
// given twice: a typo ("chanel=") must not quietly list every device.
func checkParams(v url.Values, known []string, repeatable ...string) error {
	for name, values := range v {
		if !slices.Contains(known, name) {
			return fmt.Errorf("unknown query parameter %q: use %v", name, known)
		}
		if len(values) > 1 && !slices.Contains(repeatable, name) {
			return fmt.Errorf("query parameter %s given %d times: give it once", name, len(values))
		}
	}
	return nil
}

// parseBool parses parameter name, which is yes or no, or absent (nil).
func parseBool(v url.Values, name, yes, no string) (*bool, error) {
	if !v.Has(name) {
		return nil, nil
	}
	var b bool
	switch s := v.Get(name); s {
	case yes:
		b = true
	case no:
	default:
		return nil, fmt.Errorf("query parameter %s=%q: use %s or %s", name, s, yes, no)
	}
	return &b, nil
}

func parseLimit(v url.Values) (int, error) {
	if !v.Has("limit") {
		return 0, nil
	}
	n, err := strconv.Atoi(v.Get("limit"))
	if err != nil || n < 1 || n > MaxLimit {
		return 0, fmt.Errorf("query parameter limit=%q: use a whole number from 1 to %d", v.Get("limit"), MaxLimit)
	}
	return n, nil
}
