package hil

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

// fakeAPI answers as the fleet status API would for one device.
type fakeAPI struct {
	device *apiclient.Device // nil: unknown
	events []apiclient.Event // newest first
}

func (f fakeAPI) Device(_ context.Context, id string) (apiclient.Device, error) {
	if f.device == nil {
		return apiclient.Device{}, &apiclient.Error{Status: http.StatusNotFound}
	}
	return *f.device, nil
}

func (f fakeAPI) Events(_ context.Context, id string, q apiclient.EventQuery) (apiclient.EventPage, error) {
	if f.device == nil {
		return apiclient.EventPage{}, &apiclient.Error{Status: http.StatusNotFound}
	}
	if q.Limit > 0 && q.Limit < len(f.events) {
		return apiclient.EventPage{Events: f.events[:q.Limit]}, nil
	}
	return apiclient.EventPage{Events: f.events}, nil
}

// TestFleetAgrees checks what makes the API disagree with a console: each
// case names what it shows, and the error must say it.
func TestFleetAgrees(t *testing.T) {
	rolledBack := &update.Outcome{State: update.RolledBack, Release: update.Release{Version: "1.5.0"},
		Error: &update.Failure{Code: "ERROR_CODE_ROLLED_BACK"}}
	console := DeviceStatus{State: update.Idle, Installed: update.Release{Version: "1.4.0"}, Confirmed: true, Last: rolledBack}
	device := apiclient.Device{ID: "vb", Online: true, Version: "1.4.0", State: "idle", Confirmed: true,
		BootedSlot: "a", Error: &apiclient.DeviceError{Code: "ERROR_CODE_ROLLED_BACK"}}
	ev := func(seq uint64, to, version, code string) apiclient.Event {
		e := apiclient.Event{StreamID: "s1", Sequence: seq, To: to, Version: version}
		if code != "" {
			e.Error = &apiclient.DeviceError{Code: code}
		}
		return e
	}
	events := []apiclient.Event{ev(12, "idle", "1.5.0", ""), ev(11, "rolled_back", "1.5.0", "ERROR_CODE_ROLLED_BACK"), ev(10, "rebooting", "1.5.0", "")}
	since := mark{stream: "s1", seq: 9}
	with := func(f func(*apiclient.Device)) *apiclient.Device {
		d := device
		f(&d)
		return &d
	}
	cases := []struct {
		name  string
		api   fakeAPI
		slot  string
		since mark
		want  string // "" agrees
	}{
		{name: "agrees", api: fakeAPI{&device, events}, slot: "A", since: since},
		{name: "unknown device", api: fakeAPI{}, since: since, want: "does not know device vb"},
		{name: "offline", api: fakeAPI{with(func(d *apiclient.Device) { d.Online = false }), events}, since: since, want: `online "false", want "true"`},
		{name: "stale status", api: fakeAPI{with(func(d *apiclient.Device) { d.State, d.Confirmed = "rebooting", false }), events}, since: since,
			want: `state "rebooting", want "idle"; confirmed "false", want "true"`},
		{name: "other error", api: fakeAPI{with(func(d *apiclient.Device) { d.Error = &apiclient.DeviceError{Code: "ERROR_CODE_DOWNGRADE"} }), events}, since: since,
			want: `error "ERROR_CODE_DOWNGRADE", want "ERROR_CODE_ROLLED_BACK"`},
		{name: "other slot", api: fakeAPI{&device, events}, slot: "B", since: since, want: `booted slot "A", want "B"`},
		{name: "outcome before the mark", api: fakeAPI{&device, events}, since: mark{stream: "s1", seq: 11}, want: "no event to rolled_back 1.5.0 since event 11"},
		{name: "outbox not drained", api: fakeAPI{&device, events[1:]}, since: since, want: "newest event 11 goes to rolled_back, want the device back to idle"},
		{name: "event with another error", api: fakeAPI{&device, []apiclient.Event{events[0], ev(11, "rolled_back", "1.5.0", "ERROR_CODE_HEALTH_CHECK_FAILED")}}, since: since,
			want: `event 11 (rolled_back) has error "ERROR_CODE_HEALTH_CHECK_FAILED", want "ERROR_CODE_ROLLED_BACK"`},
		{name: "no events", api: fakeAPI{&device, nil}, since: since, want: "no event since event 9, want rolled_back 1.5.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fleet{api: tc.api, timeout: 0, poll: time.Millisecond}
			err := f.agree(context.Background(), expectation{device: "vb", status: console, slot: tc.slot, outcome: true, since: tc.since})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("agree: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("agree: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestFleetMark checks that a scenario's mark is the newest event, and
// the zero mark for a device the API does not know yet.
func TestFleetMark(t *testing.T) {
	d := apiclient.Device{ID: "vb"}
	f := &fleet{api: fakeAPI{&d, []apiclient.Event{{StreamID: "s1", Sequence: 7}, {StreamID: "s1", Sequence: 6}}}}
	if m, err := f.mark(context.Background(), "vb"); err != nil || m != (mark{stream: "s1", seq: 7}) {
		t.Errorf("mark = %+v, %v; want event 7 of s1", m, err)
	}
	f.api = fakeAPI{}
	if m, err := f.mark(context.Background(), "vb"); err != nil || m != (mark{}) {
		t.Errorf("mark of an unknown device = %+v, %v; want the zero mark", m, err)
	}
}
