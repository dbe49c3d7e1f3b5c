package hil

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

// fleetAPI is what the runner reads of the fleet status API
// (apiclient.Client).
type fleetAPI interface {
	Device(ctx context.Context, id string) (apiclient.Device, error)
	Events(ctx context.Context, id string, q apiclient.EventQuery) (apiclient.EventPage, error)
}

// A fleet is the gitfleet server the rig's boards report to, as the runner
// reads it: every scenario ends by waiting until the API says what the
// board's console said.
type fleet struct {
	api fleetAPI
	// timeout bounds the wait for a board's report to show; poll is the
	// pause between two reads.
	timeout, poll time.Duration
}

// dialFleet returns the fleet of an existing server: its API and the
// token in the rig's token file.
func dialFleet(s Server) (*fleet, error) {
	tok, err := os.ReadFile(s.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("server.token_file: %w", err)
	}
	c, err := apiclient.New(s.API, strings.TrimSpace(string(tok)), nil)
	if err != nil {
		return nil, fmt.Errorf("server.api: %w", err)
	}
	return &fleet{api: c, timeout: s.ReportTimeout, poll: 200 * time.Millisecond}, nil
}

// A mark is where a device's event stream stood in the API when a scenario
// started: its newest event. The zero mark is before any event.
type mark struct {
	stream string
	seq    uint64
}

func (m mark) String() string {
	if m.stream == "" {
		return "the first event"
	}
	return fmt.Sprintf("event %d", m.seq)
}

// mark returns the newest event of device id the API holds.
func (f *fleet) mark(ctx context.Context, id string) (mark, error) {
	p, err := f.api.Events(ctx, id, apiclient.EventQuery{Limit: 1})
	switch {
	case isNotFound(err):
		return mark{}, nil // the device never reported
	case err != nil:
		return mark{}, fmt.Errorf("fleet API: %w", err)
	case len(p.Events) == 0:
		return mark{}, nil
	}
	return mark{stream: p.Events[0].StreamID, seq: p.Events[0].Sequence}, nil
}

func isNotFound(err error) bool {
	var e *apiclient.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// An expectation is what a scenario expects the API to show of its
// device: the status its console reported and the slot it booted, and
// whether that status's last result came of this scenario, after since.
type expectation struct {
	device string
	status DeviceStatus
	// slot is the slot group the console saw booting ("A", "B"), "" if
	// the kernel does not say.
	slot string
	// outcome is set when the scenario ended in status.Last: the API must
	// then hold its event, newer than since, and the events up to idle.
	outcome bool
	since   mark
}

// agree waits, at most f.timeout, until the API reports the device as r
// expects, and returns what still differs if it does not.
func (f *fleet) agree(ctx context.Context, r expectation) error {
	deadline := time.Now().Add(f.timeout)
	for {
		diff, err := f.differs(ctx, r)
		switch {
		case err != nil:
			return fmt.Errorf("fleet API: %w", err)
		case diff == "":
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("after %s the fleet API still disagrees with the console: %s", f.timeout, diff)
		}
		if err := sleep(ctx, f.poll); err != nil {
			return err
		}
	}
}

// differs returns how what the API reports differs from r: "" if it
// agrees.
func (f *fleet) differs(ctx context.Context, r expectation) (string, error) {
	d, err := f.api.Device(ctx, r.device)
	if isNotFound(err) {
		return fmt.Sprintf("it does not know device %s: has the board's agent reached the broker?", r.device), nil
	}
	if err != nil {
		return "", err
	}
	var diffs []string
	differ := func(what, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s %q, want %q", what, got, want))
		}
	}
	s := r.status
	differ("online", fmt.Sprint(d.Online), "true")
	differ("version", d.Version, s.Installed.Version)
	differ("state", d.State, string(s.State))
	differ("confirmed", fmt.Sprint(d.Confirmed), fmt.Sprint(s.Confirmed))
	differ("error", errorCode(d.Error), lastErrorCode(s.Last))
	// The slot is compared when the agent reports it.
	if d.BootedSlot != "" && r.slot != "" {
		differ("booted slot", strings.ToUpper(d.BootedSlot), r.slot)
	}
	if r.outcome && s.Last != nil {
		diff, err := f.eventsDiffer(ctx, r)
		if err != nil {
			return "", err
		}
		if diff != "" {
			diffs = append(diffs, diff)
		}
	}
	return strings.Join(diffs, "; "), nil
}

// eventsDiffer checks the events the API received since r.since: the
// outcome of r.status.Last among them, with its error, and the newest one
// back to idle, so that the board's outbox is drained.
func (f *fleet) eventsDiffer(ctx context.Context, r expectation) (string, error) {
	last := r.status.Last
	events, err := f.eventsSince(ctx, r.device, r.since)
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf("%s %s", string(last.State), last.Release.Version)
	if len(events) == 0 {
		return fmt.Sprintf("no event since %s, want %s", r.since, want), nil
	}
	if to := events[0].To; to != string(update.Idle) {
		return fmt.Sprintf("newest event %d goes to %s, want the device back to idle after %s", events[0].Sequence, to, want), nil
	}
	for _, e := range events {
		if e.To != string(last.State) || e.Version != last.Release.Version {
			continue
		}
		if got, want := errorCode(e.Error), lastErrorCode(last); got != want {
			return fmt.Sprintf("event %d (%s) has error %q, want %q", e.Sequence, e.To, got, want), nil
		}
		return "", nil
	}
	return fmt.Sprintf("no event to %s since %s (%d events, newest %d to %s)", want, r.since, len(events), events[0].Sequence, events[0].To), nil
}

// maxEventPages bounds how far back eventsSince reads: a scenario makes a
// few dozen events at most.
const maxEventPages = 10

// eventsSince returns the device's events newer than m, newest first.
func (f *fleet) eventsSince(ctx context.Context, id string, m mark) ([]apiclient.Event, error) {
	var events []apiclient.Event
	q := apiclient.EventQuery{Limit: 100}
	for range maxEventPages {
		p, err := f.api.Events(ctx, id, q)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range p.Events {
			if m.stream != "" && e.StreamID == m.stream && e.Sequence <= m.seq {
				return events, nil
			}
			events = append(events, e)
		}
		if p.Next == "" {
			break
		}
		q.Before = p.Next
	}
	return events, nil
}

func errorCode(e *apiclient.DeviceError) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func lastErrorCode(o *update.Outcome) string {
	if o == nil || o.Error == nil {
		return ""
	}
	return o.Error.Code
}
