// Package controller runs a fleet's rollouts. At every step it reads what
// Git wants (fleet.yaml: each channel's release and policy), what the fleet
// does (device statuses in the store), and the rollout state it persisted,
// asks the rollout engine (server/rollout) for the next state, persists it,
// and advertises each channel's signed state — so a wave advances only on
// confirmed healthy boots and a rollout halts on failures by itself.
package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// Store is the fleet database, as the controller needs it.
type Store interface {
	Channel(ctx context.Context, name string) (store.Channel, error)
	SwapChannel(ctx context.Context, was, next store.Channel) (bool, error)
	Devices(ctx context.Context, q store.DeviceQuery) (store.DevicePage, error)
	Release(ctx context.Context, version string) (store.Release, error)
	ReleaseFailures(ctx context.Context, release string) (map[string]store.Penalty, error)
	RecordRetry(ctx context.Context, device, release string, failures int) error
}

// Advertiser publishes signed, expiring, retained states to devices.
type Advertiser interface {
	AdvertiseChannel(ctx context.Context, cs *gitfleetv1.ChannelState) error
	AdvertiseDesired(ctx context.Context, ds *gitfleetv1.DesiredState) error
}

// Locator says where devices fetch a release: the bundle's URLs, for
// object storage presigned ones.
type Locator interface {
	Locate(ctx context.Context, rel store.Release) (*gitfleetv1.Release, error)
}

// A Controller steps the rollouts of one fleet.
type Controller struct {
	// Fleet returns the current fleet.yaml of the main branch.
	Fleet     func() (*recipe.Fleet, error)
	Store     Store
	Advertise Advertiser
	Locate    Locator
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Readvertise is how long an advertised channel state is kept before it
	// is advertised again with fresh object URLs (default 20 min): presigned
	// URLs expire, and a device may start a download at any time.
	Readvertise time.Duration

	// mu serialises steps and rollout actions; it guards advertised,
	// overrides and waiting. A step reads every device, so it can take a while:
	// results has a lock of its own, so the API's Statuses never waits
	// for a step.
	mu         sync.Mutex
	advertised map[string]advert            // channel → last advertised
	overrides  map[string]gitfleetv1.Action // device → penalty-box override published
	waiting    map[string]string            // channel → the release it was last logged waiting for

	resultsMu sync.Mutex
	results   map[string]*rollout.Result // channel → last step
}

// Status is the last step's view of one channel, for the API.
type Status struct {
	Channel string
	Release string
	Result  *rollout.Result
	// Waiting says why the channel has no rollout, e.g. its release is not
	// built yet.
	Waiting string
}

// Step evaluates every channel once.
//
// Each channel's failures of its release are read before the devices: a
// device that fails between the two reads is judged failed all the same,
// from the outcome in its status, while one that confirms is seen
// confirmed. Read the other way round, the devices that finished in
// between counted only if they failed, and a wave finishing many devices a
// second (a 10,000-device simulation) halted on its first two failures,
// with none of its confirmed boots counted.
func (c *Controller) Step(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fl, err := c.Fleet()
	if err != nil {
		return fmt.Errorf("fleet.yaml: %w", err)
	}
	var errs []error
	var steps []*channelStep
	for i := range fl.Channels {
		cs, err := c.prepare(ctx, &fl.Channels[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", fl.Channels[i].Name, err))
		} else if cs != nil {
			steps = append(steps, cs)
		}
	}
	if len(steps) == 0 {
		return errors.Join(errs...)
	}
	// Git decides which devices follow which channel (fleet.yaml's
	// selectors), not the channel a device's own config names.
	all, err := c.fleetDevices(ctx, fl.Name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	members := map[string][]store.Device{}
	for _, d := range all {
		if ch := fl.ChannelFor(recipe.Device{ID: d.ID, Type: d.DeviceType, Labels: d.Labels}); ch != nil {
			members[ch.Name] = append(members[ch.Name], d)
		}
	}
	for _, cs := range steps {
		if err := c.step(ctx, fl.Name, cs, members[cs.ch.Name]); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", cs.ch.Name, err))
		}
	}
	return errors.Join(errs...)
}

// channelStep is what a step reads of one channel before the devices.
type channelStep struct {
	ch       *recipe.Channel
	rel      store.Release
	failures map[string]store.Penalty // device → its failures of rel
}

// prepare reads ch's release and the devices' failures of it; it returns
// nil for a channel with no release or one not built yet.
func (c *Controller) prepare(ctx context.Context, ch *recipe.Channel) (*channelStep, error) {
	if ch.Release == "" {
		return nil, nil
	}
	rel, err := c.Store.Release(ctx, ch.Release)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rel.BuildState != store.Succeeded) {
		c.remember(ch.Name, nil)
		if c.waiting[ch.Name] != ch.Release { // once, not at every step
			c.log().Info("waiting for the release to be built", "channel", ch.Name, "release", ch.Release)
			if c.waiting == nil {
				c.waiting = map[string]string{}
			}
			c.waiting[ch.Name] = ch.Release
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	delete(c.waiting, ch.Name)
	// One query for the whole channel, not one a device: a step of a channel
	// of 100,000 devices would otherwise wait on as many round trips.
	failures, err := c.Store.ReleaseFailures(ctx, rel.BundleDigest) // ingest counts failures by bundle digest
	if err != nil {
		return nil, err
	}
	return &channelStep{ch: ch, rel: rel, failures: failures}, nil
}

// step evaluates one channel's rollout over its members, persists and
// advertises the outcome.
func (c *Controller) step(ctx context.Context, fleet string, prep *channelStep, members []store.Device) error {
	ch, rel, failures := prep.ch, prep.rel, prep.failures
	sc, cur, err := c.load(ctx, ch.Name)
	if err != nil {
		return err
	}
	devices := c.devices(members, failures)
	rch := rollout.Channel{Fleet: fleet, Name: ch.Name, Release: rollout.Release{Version: rel.Version, Digest: rel.BundleDigest, Commit: rel.Commit},
		Policy: rollout.Policy{Waves: ch.Policy.Waves, WaveDuration: ch.Policy.WaveDuration, MaxFailureRate: ch.Policy.MaxFailureRate, MinConfirmed: ch.Policy.MinConfirmed,
			PenaltyAfter: ch.Policy.PenaltyAfter, RetryAfter: ch.Policy.RetryAfter}}
	res, err := rollout.Evaluate(rch, cur, devices, c.now())
	if err != nil {
		return err
	}
	if res.Changed || sc.Release != rel.Version || sc.Engine == "" {
		// Another replica may have stepped the channel since it was read:
		// then this step's decision is dropped, not written over theirs,
		// and the next step starts from what they wrote.
		ok, err := c.save(ctx, sc, res.Rollout)
		if err != nil {
			return err
		}
		if !ok {
			c.log().Info("rollout changed by another replica during the step; stepping again next time", "channel", ch.Name)
			return nil
		}
		c.log().Info("rollout", "channel", ch.Name, "release", rel.Version, "state", res.Rollout.State, "wave", res.Rollout.Wave, "reason", res.Rollout.Reason)
	}
	c.remember(ch.Name, res)
	loc, err := c.Locate.Locate(ctx, rel)
	if err != nil {
		return fmt.Errorf("locate release %s: %w", rel.Version, err)
	}
	cs := &gitfleetv1.ChannelState{Fleet: fleet, Channel: ch.Name, Release: loc, Wave: res.Wave(), RolloutState: res.State()}
	// Advertise what changed: the release, the wave or the state — not the
	// object URLs, which are signed afresh at every step — and refresh the
	// URLs before they expire.
	key := advertKey(cs)
	if prev, ok := c.advertised[ch.Name]; !ok || prev.key != key || c.now().Sub(prev.at) > c.readvertise() {
		if err := c.Advertise.AdvertiseChannel(ctx, cs); err != nil {
			return fmt.Errorf("advertise: %w", err)
		}
		if c.advertised == nil {
			c.advertised = map[string]advert{}
		}
		c.advertised[ch.Name] = advert{key: key, at: c.now()}
	}
	for _, o := range res.Overrides {
		ds := &gitfleetv1.DesiredState{Fleet: fleet, DeviceId: o.DeviceID, Action: o.Action}
		if o.Action == gitfleetv1.Action_ACTION_RETRY {
			ds.Release = loc
		}
		if err := c.Advertise.AdvertiseDesired(ctx, ds); err != nil {
			return fmt.Errorf("desired state of %s: %w", o.DeviceID, err)
		}
		if c.overrides == nil {
			c.overrides = map[string]gitfleetv1.Action{}
		}
		c.overrides[o.DeviceID] = o.Action
		if o.Action == gitfleetv1.Action_ACTION_RETRY {
			// In the store, beside the failures it answers, so neither a
			// restart nor another replica orders it again. Published
			// first: a crash in between orders it twice, never not at all.
			// Failures an operator cleared meanwhile leave nothing to
			// record it on, and the next step starts afresh.
			err := c.Store.RecordRetry(ctx, o.DeviceID, rel.BundleDigest, failures[o.DeviceID].Failures)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		c.log().Info("penalty box", "device", o.DeviceID, "action", o.Action, "reason", o.Reason)
	}
	return nil
}

type advert struct {
	key string
	at  time.Time
}

func advertKey(cs *gitfleetv1.ChannelState) string {
	return fmt.Sprintf("%s|%d|%d|%s", cs.GetRelease().GetBundleDigest(), cs.GetWave().GetIndex(), cs.GetWave().GetThreshold(), cs.GetRolloutState())
}

func (c *Controller) readvertise() time.Duration {
	if c.Readvertise > 0 {
		return c.Readvertise
	}
	return 20 * time.Minute
}

// Command applies an operator's pause, resume or abort to a channel's
// rollout, then steps it.
func (c *Controller) Command(ctx context.Context, channel string, ev rollout.Event, note string) error {
	c.mu.Lock()
	err := c.command(ctx, channel, ev, note)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.Step(ctx)
}

// commandTries is how often Command reads a channel again when another
// replica changed it between the read and the write.
const commandTries = 5

func (c *Controller) command(ctx context.Context, channel string, ev rollout.Event, note string) error {
	for range commandTries {
		sc, cur, err := c.load(ctx, channel)
		if err != nil {
			return err
		}
		if cur.Digest == "" {
			return fmt.Errorf("channel %s has no rollout yet: %w", channel, store.ErrNotFound)
		}
		next, err := rollout.Apply(cur, ev, c.now(), note)
		if err != nil {
			return err
		}
		ok, err := c.save(ctx, sc, next)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("channel %s: its rollout changed %d times while applying %s; try again", channel, commandTries, ev)
}

// Statuses returns the last step's view of every channel.
func (c *Controller) Statuses() []Status {
	c.resultsMu.Lock()
	defer c.resultsMu.Unlock()
	var out []Status
	for name, r := range c.results {
		s := Status{Channel: name, Result: r}
		if r == nil {
			s.Waiting = "the release is not built yet"
		} else {
			s.Release = r.Rollout.Version
		}
		out = append(out, s)
	}
	return out
}

func (c *Controller) remember(channel string, r *rollout.Result) {
	c.resultsMu.Lock()
	defer c.resultsMu.Unlock()
	if c.results == nil {
		c.results = map[string]*rollout.Result{}
	}
	c.results[channel] = r
}

// load reads a channel's stored rollout; a channel never stored has the
// zero rollout, which Evaluate starts.
func (c *Controller) load(ctx context.Context, name string) (store.Channel, rollout.Rollout, error) {
	sc, err := c.Store.Channel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{Name: name}, rollout.Rollout{}, nil
	}
	if err != nil {
		return sc, rollout.Rollout{}, err
	}
	var cur rollout.Rollout
	if sc.Engine != "" {
		if err := json.Unmarshal([]byte(sc.Engine), &cur); err != nil {
			return sc, cur, fmt.Errorf("stored rollout of %s: %w", name, err)
		}
	}
	return sc, cur, nil
}

// save writes r as channel was.Name's rollout if the channel is still as
// it was read, and reports whether it did.
func (c *Controller) save(ctx context.Context, was store.Channel, r rollout.Rollout) (bool, error) {
	engine, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	return c.Store.SwapChannel(ctx, was, store.Channel{Name: was.Name, Release: r.Version, Wave: r.Wave, State: storeState(r.State),
		Reason: r.Reason, WaveStarted: r.WaveStarted, Engine: string(engine)})
}

// storeState maps the engine's states to the store's queryable summary.
func storeState(s rollout.State) store.RolloutState {
	switch s {
	case rollout.Paused:
		return store.Paused
	case rollout.Aborted:
		return store.Aborted
	case rollout.Halted:
		return store.Halted
	}
	return store.Active // active and complete
}

// fleetDevices reads every device of the fleet.
func (c *Controller) fleetDevices(ctx context.Context, fleet string) ([]store.Device, error) {
	var out []store.Device
	q := store.DeviceQuery{DeviceFilter: store.DeviceFilter{Fleet: fleet}, Limit: store.MaxPage}
	for {
		page, err := c.Store.Devices(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Devices...)
		if page.Next == "" {
			return out, nil
		}
		q.After = page.Next
	}
}

// devices turns a channel's members and their failures of its release into
// what the rollout engine judges.
func (c *Controller) devices(members []store.Device, failures map[string]store.Penalty) []rollout.Device {
	out := make([]rollout.Device, 0, len(members))
	for _, d := range members {
		p := failures[d.ID]
		out = append(out, rollout.Device{
			ID: d.ID, Online: d.Online, Version: d.Version, Digest: d.BundleDigest, Commit: d.Commit, Slot: d.BootedSlot,
			Confirmed: d.BootConfirmed, UpdateState: d.UpdateState, TargetDigest: d.TargetBundleDigest,
			LastError: gitfleetv1.ErrorCode(gitfleetv1.ErrorCode_value[d.ErrorCode]),
			Failures:  p.Failures, LastFailure: p.Last, RetriedAt: p.RetriedAt, Retried: p.Retried,
			Override: c.overrides[d.ID], Boxed: c.overrides[d.ID] == gitfleetv1.Action_ACTION_CANCEL,
		})
	}
	return out
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}
