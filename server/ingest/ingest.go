package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/internal/backoff"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/store"
)

// Defaults of Config.
const (
	DefaultGroup         = "gitfleet-ingest"
	DefaultBatchSize     = 256
	DefaultStatusWriters = 2
	DefaultEventWorkers  = 4
)

// storeRetry is how a write to the store is tried again: for about a minute
// in all, after which the messages are dropped and counted.
var storeRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: 15 * time.Second, Attempts: 8}

// Store is the fleet database, as an Ingest writes it: a *store.Store.
type Store interface {
	PutDevices(ctx context.Context, ds []store.Device) (stale []string, err error)
	SetOnline(ctx context.Context, id string, online bool) error
	AppendEvents(ctx context.Context, es []store.Event) ([]store.Appended, error)
	RecordFailure(ctx context.Context, device, release string) (int, error)
}

// Subscriber is what Run receives messages through: a bus.Client.
type Subscriber interface {
	Subscribe(ctx context.Context, filter string, h bus.Handler) error
}

// Config says which fleet an Ingest reads and how.
type Config struct {
	// Fleet is the fleet whose devices' statuses and events are read.
	Fleet string
	// Group is the shared-subscription group: replicas with the same group
	// split the fleet's messages (default DefaultGroup).
	Group string
	// BatchSize is how many statuses, or events, at most, one transaction
	// stores (default DefaultBatchSize).
	BatchSize int
	// StatusWriters is how many batches are stored at once, each device's
	// statuses by one writer (default DefaultStatusWriters). PostgreSQL
	// takes more batches at once than one; SQLite takes them in turn.
	StatusWriters int
	// EventWorkers is how many batches of events are stored at once, each
	// device's events by one worker in the order they arrived (default
	// DefaultEventWorkers).
	EventWorkers int
	// OnUpdate, if set, is called after each status and each new event is
	// stored, from a goroutine Run owns: it must return quickly. The rollout
	// controller re-evaluates the device's channel on it.
	OnUpdate func(Update)
}

// An Update is a status or an event just stored: exactly one of Status and
// Event is set.
type Update struct {
	// Device is the device that reported.
	Device string
	// Status is the status stored. A last will has Online false and no
	// other status field: only the device's online flag was stored.
	Status *gitfleetv1.DeviceStatus
	// Event is the event stored and Arrival how it stood to those of its
	// stream before it. Duplicates are not reported.
	Event   *gitfleetv1.DeviceEvent
	Arrival store.Arrival
	// Failures, when the event records a failed attempt at a release
	// (rollout.FailedAttempt), is the device's count of failures of that
	// release now; 0 otherwise.
	Failures int
}

// An Ingest stores what a fleet's devices report. See the package
// documentation.
type Ingest struct {
	cfg   Config
	store Store
	log   *slog.Logger
	seed  maphash.Seed
	c     counters

	mu         sync.Mutex
	running    bool
	subscribed chan struct{} // closed once Run subscribed
	done       chan struct{} // closed when Run returns
	status     []chan statusItem
	events     []chan eventItem
}

// New returns an Ingest of cfg's fleet into st.
func New(cfg Config, st Store, log *slog.Logger) (*Ingest, error) {
	if err := topic.CheckID(cfg.Fleet); err != nil {
		return nil, fmt.Errorf("ingest: Config.Fleet: %w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if err := topic.CheckID(cfg.Group); err != nil {
		return nil, fmt.Errorf("ingest: Config.Group: %w", err)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.StatusWriters <= 0 {
		cfg.StatusWriters = DefaultStatusWriters
	}
	if cfg.EventWorkers <= 0 {
		cfg.EventWorkers = DefaultEventWorkers
	}
	in := &Ingest{
		cfg: cfg, store: st, log: log, seed: maphash.MakeSeed(),
		subscribed: make(chan struct{}),
		done:       make(chan struct{}),
	}
	for range cfg.StatusWriters {
		in.status = append(in.status, make(chan statusItem, 4*cfg.BatchSize))
	}
	for range cfg.EventWorkers {
		in.events = append(in.events, make(chan eventItem, 256))
	}
	return in, nil
}

// Run subscribes to the fleet's statuses and events in the shared group and
// stores what arrives until ctx ends; then it returns nil. Messages that
// arrive afterwards, on subscriptions that outlive Run with the client, are
// left unacknowledged for the broker to deliver again. Run may be called
// once.
func (in *Ingest) Run(ctx context.Context, sub Subscriber) error {
	in.mu.Lock()
	if in.running {
		in.mu.Unlock()
		return errors.New("ingest: Run called twice")
	}
	in.running = true
	in.mu.Unlock()
	defer close(in.done)

	statuses, err := in.filter(topic.KindStatus)
	if err != nil {
		return err
	}
	events, err := in.filter(topic.KindEvents)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, ch := range in.status {
		g.Go(func() error { writeBatches(gctx, ch, in.cfg.BatchSize, in.storeStatuses); return nil })
	}
	for _, ch := range in.events {
		g.Go(func() error { writeBatches(gctx, ch, in.cfg.BatchSize, in.storeEvents); return nil })
	}
	g.Go(func() error {
		if err := sub.Subscribe(gctx, statuses, in.receiveStatus); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		if err := sub.Subscribe(gctx, events, in.receiveEvent); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		in.log.Info("ingest: subscribed", "statuses", statuses, "events", events)
		close(in.subscribed)
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Subscribed returns a channel that is closed once Run has subscribed to the
// fleet's statuses and events: for a readiness check, since the broker keeps
// nothing published to a shared subscription before it exists.
func (in *Ingest) Subscribed() <-chan struct{} { return in.subscribed }

// filter returns the shared subscription to the fleet's topics of kind.
func (in *Ingest) filter(kind topic.Kind) (string, error) {
	f, err := topic.Filter(kind, in.cfg.Fleet)
	if err == nil {
		f, err = topic.Shared(in.cfg.Group, f)
	}
	if err != nil {
		return "", fmt.Errorf("ingest: %w", err)
	}
	return f, nil
}

// parse checks the topic of m: one of kind in the fleet. A message that
// fails is counted, acknowledged and dropped.
func (in *Ingest) parse(m bus.Message, kind topic.Kind) (topic.Topic, bool) {
	t, err := topic.Parse(m.Topic)
	if err == nil && (t.Kind != kind || t.Fleet != in.cfg.Fleet) {
		err = fmt.Errorf("not a %s topic of fleet %s", kind, in.cfg.Fleet)
	}
	if err != nil {
		in.refuse(m, &in.c.malformed, err)
		return topic.Topic{}, false
	}
	return t, true
}

// writeBatches stores the items queued on ch with store until ctx ends, in
// batches: the items waiting when a batch starts, up to size, in the order
// they came. A transaction a batch, not a message, is what lets the store
// keep up with a fleet.
func writeBatches[T any](ctx context.Context, ch <-chan T, size int, store func(context.Context, []T)) {
	batch := make([]T, 0, size)
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-ch:
			batch = append(batch[:0], it)
		}
	fill:
		for len(batch) < size {
			select {
			case it := <-ch:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		store(ctx, batch)
	}
}

// worker returns the queue, of qs, of device's messages: always the same,
// so that they are stored in the order they came.
func worker[T any](in *Ingest, qs []chan T, device string) chan T {
	return qs[maphash.String(in.seed, device)%uint64(len(qs))]
}

// refuse counts m with n, logs why, acknowledges it and drops it: it would
// be refused again if it came again.
func (in *Ingest) refuse(m bus.Message, n *atomic.Uint64, err error) {
	n.Add(1)
	in.log.Warn("ingest: message refused", "topic", m.Topic, "err", err)
	m.Ack()
}
