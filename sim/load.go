package sim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/bus"
)

// A Storm is a burst of status messages: every device publishes Rounds
// statuses, round after round, each waiting for the broker's PUBACK, with
// at most Concurrency publishes in flight. The last round's statuses carry
// Note in a health check named "load", so that whoever receives them can
// tell when the last has arrived.
type Storm struct {
	Rounds      int
	Concurrency int
	Note        string
	// Keep makes the last round's status the one each device's link
	// publishes, retained, on change and at each heartbeat, so that a later
	// heartbeat does not take the note away: one more message a device,
	// which the storm does not count.
	Keep bool
}

// StormResult is what a storm sent.
type StormResult struct {
	Messages int64
	Start    time.Time
	// Elapsed is the time until the broker acknowledged the last message.
	Elapsed time.Duration
}

// Rate is the messages per second the broker acknowledged.
func (r StormResult) Rate() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// Storm runs s over every device started so far.
func (f *Fleet) Storm(ctx context.Context, s Storm) (StormResult, error) {
	devices := f.snapshot()
	res := StormResult{Start: time.Now()}
	var sent atomic.Int64
	for r := 1; r <= s.Rounds; r++ {
		note := fmt.Sprintf("round %d", r)
		if r == s.Rounds {
			note = s.Note
		}
		var next atomic.Int64
		g, ctx := errgroup.WithContext(ctx)
		for range max(s.Concurrency, 1) {
			g.Go(func() error {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(devices) {
						return nil
					}
					if err := devices[i].publishStatus(ctx, note, s.Keep && r == s.Rounds); err != nil {
						return fmt.Errorf("device %s: %w", devices[i].id, err)
					}
					sent.Add(1)
				}
			})
		}
		if err := g.Wait(); err != nil {
			return res, fmt.Errorf("storm round %d: %w", r, err)
		}
	}
	res.Messages, res.Elapsed = sent.Load(), time.Since(res.Start)
	return res, nil
}

// WaitStored waits until the server's API shows the status carrying note
// for n devices of fleet, and returns when it first did. It polls page by
// page, so the time is late by up to one pass over the device list.
//
// It gives up when the count has not grown for a minute: a device whose
// engine ran meanwhile replaced the storm's status with one of its own, and
// would be waited for forever.
func WaitStored(ctx context.Context, api *apiclient.Client, fleet string, n int, note string) (time.Time, error) {
	const stall = time.Minute
	last, grew := -1, time.Now()
	for {
		got, err := countNote(ctx, api, fleet, note)
		if err != nil {
			return time.Time{}, err
		}
		if got >= n {
			return time.Now(), nil
		}
		if got > last {
			last, grew = got, time.Now()
		} else if time.Since(grew) > stall {
			return time.Time{}, fmt.Errorf("%d of %d devices stored the last status of the storm, and none more for %v (did an update run during the storm?)", got, n, stall)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return time.Time{}, fmt.Errorf("%d of %d devices stored the last status of the storm: %w", got, n, ctx.Err())
		}
	}
}

func countNote(ctx context.Context, api *apiclient.Client, fleet, note string) (int, error) {
	n := 0
	q := apiclient.DeviceQuery{Fleet: fleet, Limit: apiclient.MaxLimit}
	for {
		page, err := api.Devices(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, d := range page.Devices {
			if slices.ContainsFunc(d.Health.Checks, func(c apiclient.HealthCheck) bool { return c.Name == "load" && c.Message == note }) {
				n++
			}
		}
		if page.Next == "" {
			return n, nil
		}
		q.After = page.Next
	}
}

// A Sink is the limit the server's ingest is measured against: the
// server's own MQTT client (server/bus over paho), subscribed as the ingest
// is, to a fleet's statuses in a shared group, with a handler that only
// counts and acknowledges. What the sink receives per second is what the
// broker delivers to one subscriber, with nothing stored.
type Sink struct {
	client *bus.Paho
	mu     sync.Mutex
	n      int64
	last   time.Time
	wake   chan struct{}
}

// NewSink connects to broker (tcp://HOST:PORT) as user and subscribes to
// fleet's statuses.
func NewSink(ctx context.Context, broker, user, password, fleet string, log *slog.Logger) (*Sink, error) {
	filter, err := topic.Filter(topic.KindStatus, fleet)
	if err != nil {
		return nil, err
	}
	if filter, err = topic.Shared("gitfleet-sim-sink", filter); err != nil {
		return nil, err
	}
	c, err := bus.DialPaho(ctx, bus.PahoConfig{Broker: broker, ClientID: "gitfleet-sim-sink-" + fleet, Username: user, Password: password}, log)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{client: c, wake: make(chan struct{}, 1)}
	if err := c.Subscribe(ctx, filter, s.receive); err != nil {
		c.Close()
		return nil, fmt.Errorf("sink: %w", err)
	}
	return s, nil
}

func (s *Sink) receive(m bus.Message) {
	m.Ack()
	if m.Retained {
		return
	}
	s.mu.Lock()
	s.n++
	s.last = time.Now()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Wait waits until the sink has received n statuses in all and returns when
// the last of them arrived.
func (s *Sink) Wait(ctx context.Context, n int64) (time.Time, error) {
	for {
		s.mu.Lock()
		got, last := s.n, s.last
		s.mu.Unlock()
		if got >= n {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("sink: %d of %d statuses arrived: %w", got, n, ctx.Err())
		case <-s.wake:
		case <-time.After(time.Second):
		}
	}
}

// Close disconnects the sink.
func (s *Sink) Close() { s.client.Close() }
