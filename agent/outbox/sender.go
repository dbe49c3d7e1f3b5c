package outbox

import (
	"context"
	"time"
)

// A Publisher sends one message at QoS 1, not retained, and returns nil
// only once the broker acknowledged it (PUBACK). It may block while there
// is no connection. The agent's MQTT link is one.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// Run sends the recorded events through p, one at a time in order, until ctx
// ends; it then returns ctx's error. Each event is forgotten only after p
// returned nil for it; when p fails, Run waits (Config.Retry) and sends the
// same event again, so the broker may see an event twice, under the same
// stream and sequence, but never miss one. Only one Run may be active.
func (o *Outbox) Run(ctx context.Context, p Publisher) error {
	failures := 0
	for {
		e := o.next()
		if e == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-o.wake:
				continue
			}
		}
		err := p.Publish(ctx, o.topic, e.payload)
		if err == nil {
			err = o.ack(e)
		}
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// One line per failure streak start, then quiet until it works again.
		if failures == 0 {
			o.log.Warn("outbox: sending an event failed; retrying", "seq", e.seq, "pending", o.Pending(), "err", err)
		}
		t := time.NewTimer(o.cfg.Retry.Delay(failures))
		failures++
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
