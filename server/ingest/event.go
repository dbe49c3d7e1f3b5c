package ingest

import (
	"context"
	"math"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// An eventItem is a decoded event waiting to be stored.
type eventItem struct {
	msg      bus.Message
	event    *gitfleetv1.DeviceEvent
	received time.Time
}

// receiveEvent checks an event message and queues it for the worker that
// stores its device's events. It runs on the bus client's goroutines.
func (in *Ingest) receiveEvent(m bus.Message) {
	in.c.events.Add(1)
	t, ok := in.parse(m, topic.KindEvents)
	if !ok {
		return
	}
	ev, err := gitfleetv1.DecodeDeviceEvent(m.Payload)
	if err == nil && ev.GetSequence() > math.MaxInt64 {
		err = &gitfleetv1.FieldError{Message: "DeviceEvent", Field: "sequence", Reason: "above 2^63-1"}
	}
	if err != nil {
		in.refuse(m, &in.c.malformed, err)
		return
	}
	if err := gitfleetv1.MatchTopic(t, ev); err != nil {
		in.refuse(m, &in.c.mismatched, err)
		return
	}
	// One worker a device keeps a stream in order, so that gaps are gaps.
	select {
	case worker(in, in.events, ev.GetDeviceId()) <- eventItem{msg: m, event: ev, received: time.Now()}:
	case <-in.done:
		// Unacknowledged: the broker delivers it again.
	}
}

// storeEvents appends a batch of events to their streams in one
// transaction, counts how each stood, records failed attempts for the
// penalty box, and acknowledges the messages.
func (in *Ingest) storeEvents(ctx context.Context, batch []eventItem) {
	es := make([]store.Event, len(batch))
	for i, it := range batch {
		es[i] = event(it)
	}
	var as []store.Appended
	err := storeRetry.Retry(ctx, func() error {
		var err error
		as, err = in.store.AppendEvents(ctx, es)
		return err
	})
	if err != nil {
		in.dropped(ctx, len(batch), err)
		if ctx.Err() == nil {
			for _, it := range batch {
				it.msg.Ack()
			}
		}
		return
	}
	for i, it := range batch {
		in.appended(ctx, it, as[i])
	}
}

// appended counts how a stored event stood, records a failed attempt for
// the penalty box, and acknowledges the message.
func (in *Ingest) appended(ctx context.Context, it eventItem, a store.Appended) {
	ev := it.event
	if a.Arrival == store.Duplicate {
		in.c.duplicates.Add(1)
		it.msg.Ack()
		return
	}
	u := Update{Device: ev.GetDeviceId(), Event: ev, Arrival: a.Arrival}
	if rollout.FailedAttempt(ev) {
		// Keyed by bundle digest, as the rollout counts a release's failures.
		err := storeRetry.Retry(ctx, func() error {
			var err error
			u.Failures, err = in.store.RecordFailure(ctx, ev.GetDeviceId(), ev.GetBundleDigest())
			return err
		})
		if err != nil {
			in.dropped(ctx, 1, err)
		} else {
			in.c.failures.Add(1)
		}
	}
	switch a.Arrival {
	case store.AfterGap:
		in.c.gaps.Add(1)
		in.c.missing.Add(a.Missing)
		in.log.Warn("ingest: events lost", "device", ev.GetDeviceId(), "stream", ev.GetStreamId(),
			"sequence", ev.GetSequence(), "missing", a.Missing)
	case store.Late:
		in.c.late.Add(1)
	}
	it.msg.Ack()
	if in.cfg.OnUpdate != nil {
		in.cfg.OnUpdate(u)
	}
	// Counted last, so that whoever sees the event counted sees all that
	// came of it.
	in.c.new.Add(1)
}

// event returns the store's record of an event.
func event(it eventItem) store.Event {
	ev := it.event
	e := store.Event{
		DeviceID: ev.GetDeviceId(), StreamID: ev.GetStreamId(), Sequence: ev.GetSequence(), BootID: ev.GetBootId(),
		FromState: ev.GetFromState(), ToState: ev.GetToState(), Version: ev.GetVersion(), BundleDigest: ev.GetBundleDigest(),
		DoneBytes: clamp(ev.GetProgress().GetDoneBytes()), TotalBytes: clamp(ev.GetProgress().GetTotalBytes()),
		Received: it.received,
	}
	if ev.GetTime() != nil {
		e.Time = ev.GetTime().AsTime()
	}
	if er := ev.GetError(); er != nil {
		e.ErrorCode, e.ErrorMessage = er.GetCode().String(), er.GetMessage()
	}
	return e
}
