package advertise_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/advertise"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
)

func release(version string) *gitfleetv1.Release {
	return &gitfleetv1.Release{
		Version:      version,
		Counter:      14,
		BundleDigest: "sha256:" + strings.Repeat("0123456789abcdef", 4),
		Size:         64 << 20,
		Tag:          "v" + version,
		Commit:       "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
		ManifestUrl:  "https://updates.example.com/" + version + "/manifest.json",
		BaseUrl:      "https://updates.example.com/" + version + "/",
	}
}

func channelState(version string) *gitfleetv1.ChannelState {
	return &gitfleetv1.ChannelState{
		Channel: "stable", Release: release(version),
		Wave:         &gitfleetv1.Wave{Index: 0, Threshold: gitfleetv1.MaxThreshold},
		RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE,
	}
}

func newTrust(t *testing.T) *bundletest.Trust {
	return bundletest.NewTrust(t, 1, 1, time.Now().Add(365*24*time.Hour))
}

// start makes an advertiser of e's fleet that signs with signer and
// publishes through c, and runs it until the test ends.
func start(t *testing.T, e bustest.Env, c bus.Client, signer *keys.Signer, tweak func(*advertise.Config)) *advertise.Advertiser {
	t.Helper()
	cfg := advertise.Config{Fleet: e.Fleet, Signers: []*keys.Signer{signer}}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := advertise.New(cfg, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a.Run)
	t.Cleanup(stop)
	return a
}

// run runs fn on a goroutine until the returned function stops it and
// waits for it.
func run(t *testing.T, fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// device is a real agent link following channel "stable" as device-1,
// with what it accepted and refused.
type device struct {
	mu      sync.Mutex
	states  []link.State
	refused []error
	changed chan struct{}
}

func runDevice(t *testing.T, e bustest.Env, addr string, tr *bundletest.Trust) *device {
	t.Helper()
	d := &device{changed: make(chan struct{})}
	name := e.Devices[0]
	l, err := link.New(link.Config{
		Broker: "tcp://" + addr, Fleet: e.Fleet, Device: name, Channel: "stable",
		ClientID: e.DeviceClientID(t, name), Username: name, Password: e.DevicePassword, Dir: t.TempDir(),
	}, linktest.Verifier(t, tr), link.Handlers{
		State:   func(_ context.Context, s link.State) { d.update(func() { d.states = append(d.states, s) }) },
		Refused: func(_ string, err error) { d.update(func() { d.refused = append(d.refused, err) }) },
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run(t, l.Run))
	return d
}

func (d *device) update(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn()
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait waits until cond holds for what the device accepted, failing the
// test after 10 s or as soon as the device refuses a state.
func (d *device) wait(t *testing.T, what string, cond func([]link.State) bool) []link.State {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		states, refused, changed := slices.Clone(d.states), slices.Clone(d.refused), d.changed
		d.mu.Unlock()
		if len(refused) > 0 {
			t.Fatalf("waiting for %s: the device refused a state: %v", what, refused[0])
		}
		if cond(states) {
			return states
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waiting for %s: not after 10 s; the device accepted %d states", what, len(states))
		}
	}
}

// accepted returns a condition: the device accepted a state with sequence seq.
func accepted(seq uint64) func([]link.State) bool {
	return func(ss []link.State) bool {
		return slices.ContainsFunc(ss, func(s link.State) bool { return s.Sequence() == seq })
	}
}

func TestDeviceAcceptsStates(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		tr := newTrust(t)
		a := start(t, e, e.Client(t, "a"), tr.Time, nil)
		dev := runDevice(t, e, e.Addr, tr)

		cs, err := a.SetChannel(ctx, channelState("1.4.0"))
		if err != nil {
			t.Fatal(err)
		}
		got := dev.wait(t, "the channel state", accepted(cs.GetSequence()))
		if last := got[len(got)-1]; !proto.Equal(last.Channel, cs) {
			t.Errorf("the device accepted %v, want %v", last.Channel, cs)
		}

		paused, err := a.SetRolloutState(ctx, "stable", gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED)
		if err != nil {
			t.Fatal(err)
		}
		if paused.GetSequence() <= cs.GetSequence() {
			t.Errorf("the aborted state has sequence %d, not above %d", paused.GetSequence(), cs.GetSequence())
		}
		got = dev.wait(t, "the aborted state", accepted(paused.GetSequence()))
		if last := got[len(got)-1].Channel; last.GetRolloutState() != gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED || link.Reaches(e.Fleet, e.Devices[0], last) {
			t.Errorf("the device accepted rollout state %s, reaching it = %t; want aborted, not reaching it", last.GetRolloutState(), link.Reaches(e.Fleet, e.Devices[0], last))
		}

		pin, err := a.SetDesired(ctx, &gitfleetv1.DesiredState{DeviceId: e.Devices[0], Action: gitfleetv1.Action_ACTION_PIN, Release: release("1.3.0")})
		if err != nil {
			t.Fatal(err)
		}
		got = dev.wait(t, "the pin", accepted(pin.GetSequence()))
		if last := got[len(got)-1]; !proto.Equal(last.Desired, pin) {
			t.Errorf("the device accepted %v, want %v", last.Desired, pin)
		}
		if err := a.DeleteDesired(ctx, e.Devices[0]); !errors.Is(err, advertise.ErrNotLifted) {
			t.Errorf("deleting a pin: got %v, want ErrNotLifted", err)
		}
		lift, err := a.SetDesired(ctx, &gitfleetv1.DesiredState{DeviceId: e.Devices[0], Action: gitfleetv1.Action_ACTION_NONE})
		if err != nil {
			t.Fatal(err)
		}
		dev.wait(t, "the lift", accepted(lift.GetSequence()))
		if err := a.DeleteDesired(ctx, e.Devices[0]); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Desired(e.Devices[0]); ok {
			t.Error("the deleted override is still advertised")
		}
	})
}

// TestRefresh checks that states are republished, with growing sequences,
// well before they expire.
func TestRefresh(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		tr := newTrust(t)
		a := start(t, e, e.Client(t, "a"), tr.Time, func(c *advertise.Config) { c.Lifetime = 2 * time.Second })
		dev := runDevice(t, e, e.Addr, tr)
		cs, err := a.SetChannel(context.Background(), channelState("1.4.0"))
		if err != nil {
			t.Fatal(err)
		}
		got := dev.wait(t, "three states", func(ss []link.State) bool { return len(ss) >= 3 })
		for i, s := range got {
			if i > 0 && s.Sequence() <= got[i-1].Sequence() {
				t.Errorf("state %d has sequence %d, not above %d", i, s.Sequence(), got[i-1].Sequence())
			}
			if !proto.Equal(s.Channel.GetRelease(), cs.GetRelease()) {
				t.Errorf("state %d has release %v, want %v", i, s.Channel.GetRelease(), cs.GetRelease())
			}
		}
	})
}

// TestSequenceAcrossReplicas has a second advertiser, on a clock ten
// minutes behind the first's, take over the channel: what it publishes must
// still be above what the devices accepted.
func TestSequenceAcrossReplicas(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		tr := newTrust(t)
		dev := runDevice(t, e, e.Addr, tr)
		cfgA := advertise.Config{Fleet: e.Fleet, Signers: []*keys.Signer{tr.Time}}
		a, err := advertise.New(cfgA, e.Client(t, "a"), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		stopA := run(t, a.Run)
		first, err := a.SetChannel(ctx, channelState("1.4.0"))
		if err != nil {
			t.Fatal(err)
		}
		dev.wait(t, "the first state", accepted(first.GetSequence()))
		stopA()

		behind := func() time.Time { return time.Now().Add(-10 * time.Minute) }
		b := start(t, e, e.Client(t, "b"), tr.Time, func(c *advertise.Config) { c.Now = behind })
		waitFor(t, "the second advertiser to see the first's state", func() bool {
			cs, ok := b.Channel("stable")
			return ok && cs.GetSequence() == first.GetSequence()
		})
		second, err := b.SetChannel(ctx, channelState("1.5.0"))
		if err != nil {
			t.Fatal(err)
		}
		if second.GetSequence() <= first.GetSequence() {
			t.Fatalf("the second advertiser issued sequence %d, not above the first's %d", second.GetSequence(), first.GetSequence())
		}
		dev.wait(t, "the second state", accepted(second.GetSequence()))
	})
}

// TestStatesSurviveRestart restarts the embedded broker and the server: a
// device that connects first gets the states kept on disk, and the new
// advertiser takes them over.
func TestStatesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t)
	e := bustest.Embedded(t)
	dir := t.TempDir()
	cfg := broker.Config{Addr: "127.0.0.1:0", Fleets: []string{e.Fleet}, DataDir: dir}

	b1, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stopBroker := run(t, b1.Run)
	c1 := bus.NewInline(b1.Server())
	a1, err := advertise.New(advertise.Config{Fleet: e.Fleet, Signers: []*keys.Signer{tr.Time}}, c1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stopA1 := run(t, a1.Run)
	cs, err := a1.SetChannel(ctx, channelState("1.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	pin, err := a1.SetDesired(ctx, &gitfleetv1.DesiredState{DeviceId: e.Devices[0], Action: gitfleetv1.Action_ACTION_PIN, Release: release("1.3.0")})
	if err != nil {
		t.Fatal(err)
	}
	stopA1()
	c1.Close()
	stopBroker()

	// The restarted broker, with the device accounts of e's.
	cfg.PasswordFile = e.PasswordFile
	b2 := bustest.StartBroker(t, cfg)
	dev := runDevice(t, e, b2.Addr(), tr)
	dev.wait(t, "the kept states", func(ss []link.State) bool {
		return accepted(cs.GetSequence())(ss) && accepted(pin.GetSequence())(ss)
	})

	a2 := start(t, e, bus.NewInline(b2.Server()), tr.Time, nil)
	waitFor(t, "the new advertiser to take the states over", func() bool {
		c, okc := a2.Channel("stable")
		d, okd := a2.Desired(e.Devices[0])
		return okc && okd && proto.Equal(c, cs) && proto.Equal(d, pin)
	})
	next, err := a2.SetChannel(ctx, channelState("1.5.0"))
	if err != nil {
		t.Fatal(err)
	}
	dev.wait(t, "the next state", accepted(next.GetSequence()))
}

// TestForeignStates checks that an advertiser takes over only states signed
// by its own keys.
func TestForeignStates(t *testing.T) {
	bustest.Both(t, func(t *testing.T, e bustest.Env) {
		ctx := context.Background()
		tr := newTrust(t)
		other := bundletest.Key(t, keys.Ed25519)
		c := e.Client(t, "a")
		a := start(t, e, c, tr.Time, nil)
		foreign, ours := channelState("1.4.0"), channelState("1.4.0")
		foreign.Fleet, foreign.Channel, foreign.Sequence = e.Fleet, "foreign", 1
		ours.Fleet, ours.Channel, ours.Sequence = e.Fleet, "ours", 1
		for _, cs := range []*gitfleetv1.ChannelState{foreign, ours} {
			cs.IssuedAt, cs.ExpiresAt = timestamppb.Now(), timestamppb.New(time.Now().Add(time.Hour))
		}
		publish := func(cs *gitfleetv1.ChannelState, signer *keys.Signer) {
			name, err := topic.Channel(cs.GetFleet(), cs.GetChannel())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctx, name, linktest.Sign(t, cs, signer), true); err != nil {
				t.Fatal(err)
			}
		}
		publish(foreign, other)
		publish(ours, tr.Time)
		waitFor(t, "the advertiser to take over its own state", func() bool {
			_, ok := a.Channel("ours")
			return ok
		})
		if _, ok := a.Channel("foreign"); ok {
			t.Error("the advertiser took over a state signed by another key")
		}
	})
}

func TestSetChannelRefuses(t *testing.T) {
	e := bustest.Embedded(t)
	tr := newTrust(t)
	a := start(t, e, e.Client(t, "a"), tr.Time, nil)
	for _, tc := range []struct {
		name string
		edit func(*gitfleetv1.ChannelState)
		want string
	}{
		{"another fleet", func(cs *gitfleetv1.ChannelState) { cs.Fleet = "elsewhere" }, "is not the advertiser's"},
		{"no channel", func(cs *gitfleetv1.ChannelState) { cs.Channel = "" }, "advertise channel"},
		{"a channel that is no ID", func(cs *gitfleetv1.ChannelState) { cs.Channel = "a/b" }, "advertise channel a/b"},
		{"no release version", func(cs *gitfleetv1.ChannelState) { cs.Release.Version = "" }, "release.version"},
		{"no rollout state", func(cs *gitfleetv1.ChannelState) { cs.RolloutState = 0 }, "rollout_state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := channelState("1.4.0")
			tc.edit(cs)
			_, err := a.SetChannel(context.Background(), cs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := a.SetRolloutState(context.Background(), "none", gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED); !errors.Is(err, advertise.ErrNotFound) {
		t.Errorf("pausing an unknown channel: got %v, want ErrNotFound", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after 10 s", what)
		}
	}
}
