package advertise

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// SetChannel publishes cs as the state of its channel and keeps it fresh
// until it is replaced or deleted. cs says the channel, the release, the wave
// and the rollout state; its fleet, if set, must be the advertiser's. The
// advertiser sets the sequence, issue time and expiry, and returns the state
// as published. cs itself is not changed.
func (a *Advertiser) SetChannel(ctx context.Context, cs *gitfleetv1.ChannelState) (*gitfleetv1.ChannelState, error) {
	cs = proto.Clone(cs).(*gitfleetv1.ChannelState)
	if cs.GetFleet() == "" {
		cs.Fleet = a.cfg.Fleet
	}
	name, err := topic.Channel(cs.GetFleet(), cs.GetChannel())
	if err == nil && cs.GetFleet() != a.cfg.Fleet {
		err = fmt.Errorf("fleet %q is not the advertiser's, %q", cs.GetFleet(), a.cfg.Fleet)
	}
	if err != nil {
		return nil, fmt.Errorf("advertise channel %s: %w", cs.GetChannel(), err)
	}
	a.publishing.Lock()
	defer a.publishing.Unlock()
	s, err := a.publish(ctx, name, cs)
	if err != nil {
		return nil, fmt.Errorf("advertise channel %s: %w", cs.GetChannel(), err)
	}
	a.log.Info("advertiser: channel state published", "channel", cs.GetChannel(), "release", cs.GetRelease().GetVersion(),
		"state", cs.GetRolloutState().String(), "sequence", s.sequence())
	return proto.Clone(s.channel).(*gitfleetv1.ChannelState), nil
}

// SetRolloutState publishes the state of channel again with its rollout
// state changed to rs — paused, resumed (active) or aborted — and everything
// else as it was. It returns ErrNotFound if no state of the channel is
// advertised.
func (a *Advertiser) SetRolloutState(ctx context.Context, channel string, rs gitfleetv1.RolloutState) (*gitfleetv1.ChannelState, error) {
	cur, ok := a.Channel(channel)
	if !ok {
		return nil, fmt.Errorf("set rollout state of channel %s: %w", channel, ErrNotFound)
	}
	cur.RolloutState = rs
	return a.SetChannel(ctx, cur)
}

// DeleteChannel clears the retained state of channel and stops refreshing
// it: devices that come later hear nothing of the channel, and those that
// follow it keep the last state they accepted, which no longer changes.
func (a *Advertiser) DeleteChannel(ctx context.Context, channel string) error {
	name, err := topic.Channel(a.cfg.Fleet, channel)
	if err != nil {
		return fmt.Errorf("delete channel %s: %w", channel, err)
	}
	return a.clear(ctx, name)
}

// SetDesired publishes ds as the override of its device and keeps it fresh
// until it is replaced or deleted. To lift an override, publish ACTION_NONE:
// a signed, sequenced message, unlike a cleared topic. ds's fleet, if set,
// must be the advertiser's; the advertiser sets the sequence, issue time and
// expiry, and returns the state as published.
func (a *Advertiser) SetDesired(ctx context.Context, ds *gitfleetv1.DesiredState) (*gitfleetv1.DesiredState, error) {
	ds = proto.Clone(ds).(*gitfleetv1.DesiredState)
	if ds.GetFleet() == "" {
		ds.Fleet = a.cfg.Fleet
	}
	name, err := topic.Desired(ds.GetFleet(), ds.GetDeviceId())
	if err == nil && ds.GetFleet() != a.cfg.Fleet {
		err = fmt.Errorf("fleet %q is not the advertiser's, %q", ds.GetFleet(), a.cfg.Fleet)
	}
	if err != nil {
		return nil, fmt.Errorf("advertise desired state of %s: %w", ds.GetDeviceId(), err)
	}
	a.publishing.Lock()
	defer a.publishing.Unlock()
	s, err := a.publish(ctx, name, ds)
	if err != nil {
		return nil, fmt.Errorf("advertise desired state of %s: %w", ds.GetDeviceId(), err)
	}
	a.log.Info("advertiser: desired state published", "device", ds.GetDeviceId(), "state", ds.GetAction().String(),
		"release", ds.GetRelease().GetVersion(), "sequence", s.sequence())
	return proto.Clone(s.desired).(*gitfleetv1.DesiredState), nil
}

// DeleteDesired clears the retained override of device and stops refreshing
// it, once it is lifted: it returns ErrNotLifted unless the state advertised
// is ACTION_NONE, since a device that comes back after the override was
// cleared would never hear that it was lifted. Delete once the device has
// followed its channel again, or never: an ACTION_NONE costs one message a
// half-lifetime.
func (a *Advertiser) DeleteDesired(ctx context.Context, device string) error {
	name, err := topic.Desired(a.cfg.Fleet, device)
	if err != nil {
		return fmt.Errorf("delete desired state of %s: %w", device, err)
	}
	if cur, ok := a.Desired(device); ok && cur.GetAction() != gitfleetv1.Action_ACTION_NONE {
		return fmt.Errorf("delete desired state of %s (%s): %w", device, cur.GetAction(), ErrNotLifted)
	}
	return a.clear(ctx, name)
}

// clear publishes an empty retained message on the topic called name, which
// removes its retained state, and forgets it.
func (a *Advertiser) clear(ctx context.Context, name string) error {
	a.publishing.Lock()
	defer a.publishing.Unlock()
	if err := a.broker.Publish(ctx, name, nil, true); err != nil {
		return fmt.Errorf("clear %s: %w", name, err)
	}
	a.forget(name)
	return nil
}

// Channel returns the state of channel as advertised now.
func (a *Advertiser) Channel(channel string) (*gitfleetv1.ChannelState, bool) {
	s, ok := a.get(topic.Channel(a.cfg.Fleet, channel))
	if !ok || s.channel == nil {
		return nil, false
	}
	return proto.Clone(s.channel).(*gitfleetv1.ChannelState), true
}

// Desired returns the override of device as advertised now.
func (a *Advertiser) Desired(device string) (*gitfleetv1.DesiredState, bool) {
	s, ok := a.get(topic.Desired(a.cfg.Fleet, device))
	if !ok || s.desired == nil {
		return nil, false
	}
	return proto.Clone(s.desired).(*gitfleetv1.DesiredState), true
}

// get returns the state on the topic called name.
func (a *Advertiser) get(name string, err error) (*state, bool) {
	if err != nil {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.states[name]
	return s, ok
}
