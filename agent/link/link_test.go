package link

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/internal/backoff"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// received gathers what a running Link hands over, for a test to wait on.
type received struct {
	mu      sync.Mutex
	states  []State
	refused []gitfleetv1.ErrorCode
	changed chan struct{}
}

func newReceived() *received { return &received{changed: make(chan struct{})} }

func (r *received) handlers() Handlers {
	return Handlers{
		State: func(_ context.Context, s State) { r.update(func() { r.states = append(r.states, s) }) },
		Refused: func(_ string, err error) {
			r.update(func() { r.refused = append(r.refused, gitfleetv1.ErrorCodeOf(err)) })
		},
	}
}

func (r *received) update(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait waits until cond holds, failing the test after 10 s.
func (r *received) wait(t *testing.T, what string, cond func(states []State, refused []gitfleetv1.ErrorCode) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, changed := cond(r.states, r.refused), r.changed
		n, m := len(r.states), len(r.refused)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waiting for %s: not after 10 s (%d states, %d refusals)", what, n, m)
		}
	}
}

// hasSequence reports whether a state of kind with sequence seq was handed over.
func hasSequence(states []State, kind topic.Kind, seq uint64) bool {
	return slices.ContainsFunc(states, func(s State) bool { return s.Topic.Kind == kind && s.Sequence() == seq })
}

// deviceConfig returns the configuration of device-1 of the test broker,
// in a fleet of the test's own, connecting to addr.
func deviceConfig(t *testing.T, b testenv.Broker, f *fixture, addr string) Config {
	t.Helper()
	return Config{
		Broker: "tcp://" + addr, Fleet: f.fleet, Device: f.device, Channel: f.channel,
		ClientID: testenv.ID(t), Username: f.device, Password: b.DevicePassword, Dir: t.TempDir(),
		KeepAlive: 5 * time.Second, Reconnect: backoff.Policy{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}
}

// run runs l until the test ends, and checks that Run then returns.
func run(t *testing.T, l *Link) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10 s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// statuses decodes the DeviceStatus messages among msgs.
func statuses(t *testing.T, msgs []linktest.Message) []*gitfleetv1.DeviceStatus {
	t.Helper()
	return linktest.Decode(t, msgs, gitfleetv1.DecodeDeviceStatus)
}

// watchStatus collects the device's status messages with the server's
// account, and clears the retained status when the test ends.
func watchStatus(t *testing.T, b testenv.Broker, f *fixture) *linktest.Collector {
	t.Helper()
	statusTopic, err := topic.Status(f.fleet, f.device)
	if err != nil {
		t.Fatal(err)
	}
	watch := linktest.Collect(t, b.Addr, b.User, b.Password, testenv.ID(t), statusTopic)
	t.Cleanup(func() { linktest.Connect(t, b.Addr, b.User, b.Password, testenv.ID(t)).Publish(statusTopic, nil, true) })
	return watch
}

func TestSignedStatesOverMosquitto(t *testing.T) {
	b := testenv.MQTT(t)
	f := newFixture(t, testenv.ID(t))
	chTopic, desTopic := f.topics(t)
	server := linktest.Connect(t, b.Addr, b.User, b.Password, testenv.ID(t))
	clock := time.Now()

	// The channel's state is retained before the device connects.
	server.Publish(chTopic, f.sign(t, f.channelState(5, clock)), true)
	t.Cleanup(func() { server.Publish(chTopic, nil, true) })

	got := newReceived()
	l, err := New(deviceConfig(t, b, f, b.Addr), f.verifier, got.handlers(), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, l)
	got.wait(t, "the retained channel state", func(s []State, _ []gitfleetv1.ErrorCode) bool {
		return hasSequence(s, topic.KindChannel, 5)
	})

	// What the link must refuse, then a good state: once the good one is
	// handed over, every refusal before it has been decided.
	server.Publish(chTopic, tamper(t, f.sign(t, f.channelState(6, clock))), false)
	server.Publish(chTopic, f.sign(t, f.channelState(7, clock.Add(-48*time.Hour))), false) // expired a day ago
	server.Publish(chTopic, f.sign(t, f.channelState(4, clock)), false)                    // a replay
	server.Publish(desTopic, f.sign(t, f.desiredState("device-2", 1, clock)), false)       // someone else's
	server.Publish(desTopic, f.sign(t, f.desiredState(f.device, 1, clock)), false)
	server.Publish(chTopic, f.sign(t, f.channelState(8, clock)), false)
	got.wait(t, "channel state 8 and desired state 1", func(s []State, _ []gitfleetv1.ErrorCode) bool {
		return hasSequence(s, topic.KindChannel, 8) && hasSequence(s, topic.KindDesired, 1)
	})
	got.mu.Lock()
	defer got.mu.Unlock()
	refused := slices.Clone(got.refused)
	slices.Sort(refused)
	want := []gitfleetv1.ErrorCode{
		gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE,
		gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED,
		gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE,
		gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
	}
	slices.Sort(want)
	if !slices.Equal(refused, want) {
		t.Errorf("refusals = %v, want %v", refused, want)
	}
	for _, s := range got.states {
		if s.Topic.Kind == topic.KindChannel && !slices.Contains([]uint64{5, 8}, s.Sequence()) {
			t.Errorf("handed over channel state %d, which should have been refused", s.Sequence())
		}
	}
}

func TestStatusAndLastWill(t *testing.T) {
	b := testenv.MQTT(t)
	f := newFixture(t, testenv.ID(t))
	watch := watchStatus(t, b, f)
	proxy := linktest.NewProxy(t, b.Addr)
	cfg := deviceConfig(t, b, f, proxy.Addr())
	cfg.Heartbeat = 100 * time.Millisecond
	l, err := New(cfg, f.verifier, Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetStatus(&gitfleetv1.DeviceStatus{Version: "1.3.0", UpdateState: "idle"}); err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)

	// waitFor waits for a status after the first `after` ones that passes ok.
	waitFor := func(what string, after int, ok func(*gitfleetv1.DeviceStatus) bool) int {
		t.Helper()
		var at int
		watch.Wait(10*time.Second, func(msgs []linktest.Message) bool {
			for i := after; i < len(msgs); i++ {
				if st, err := gitfleetv1.DecodeDeviceStatus(msgs[i].Payload); err == nil && ok(st) {
					at = i + 1
					return true
				}
			}
			return false
		})
		t.Logf("%s: status %d", what, at)
		return at
	}
	online := func(st *gitfleetv1.DeviceStatus) bool { return st.GetOnline() && st.GetVersion() == "1.3.0" }
	n := waitFor("online", 0, online)
	n = waitFor("a heartbeat", n, online)
	n = waitFor("another heartbeat", n, online)

	if err := l.SetStatus(&gitfleetv1.DeviceStatus{Version: "1.3.0", UpdateState: "downloading"}); err != nil {
		t.Fatal(err)
	}
	n = waitFor("the changed status", n, func(st *gitfleetv1.DeviceStatus) bool { return st.GetUpdateState() == "downloading" })

	// The device dies without a word: the broker publishes its will.
	proxy.Block()
	if cut := proxy.Cut(); cut != 1 {
		t.Fatalf("cut %d connections, want 1", cut)
	}
	n = waitFor("the last will", n, func(st *gitfleetv1.DeviceStatus) bool { return !st.GetOnline() })
	will := statuses(t, watch.Messages()[n-1:n])[0]
	if want := (&gitfleetv1.DeviceStatus{DeviceId: f.device, ProtocolVersion: gitfleetv1.ProtocolVersion}); !proto.Equal(will, want) {
		t.Errorf("last will = %v, want %v", will, want)
	}

	// It comes back by itself, with its status.
	proxy.Unblock()
	n = waitFor("online again", n, func(st *gitfleetv1.DeviceStatus) bool {
		return st.GetOnline() && st.GetUpdateState() == "downloading"
	})

	// A clean stop marks it offline too: a clean disconnect sends no will.
	stop()
	waitFor("offline after a clean stop", n, func(st *gitfleetv1.DeviceStatus) bool { return !st.GetOnline() })
	if err := l.Publish(context.Background(), "gitfleet/v1/"+f.fleet+"/devices/"+f.device+"/events", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Run returned = %v, want %v", err, ErrClosed)
	}
}

func TestMutualTLS(t *testing.T) {
	b := testenv.MQTT(t)
	f := newFixture(t, testenv.ID(t))
	watch := watchStatus(t, b, f)
	certFile, keyFile := b.ClientCert(t, f.device)
	cfg := deviceConfig(t, b, f, b.TLSAddr)
	cfg.Broker, cfg.Username, cfg.Password = "ssl://"+b.TLSAddr, "", ""
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = b.CAFile, certFile, keyFile
	l, err := New(cfg, f.verifier, Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetStatus(&gitfleetv1.DeviceStatus{Version: "1.3.0", UpdateState: "idle"}); err != nil {
		t.Fatal(err)
	}
	run(t, l)
	// The broker's ACL lets the certificate's name publish only under its
	// own devices/<id>/: the status arriving shows who the broker saw.
	watch.Wait(10*time.Second, func(msgs []linktest.Message) bool {
		for _, st := range statuses(t, msgs) {
			if st.GetOnline() {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := topic.Events(f.fleet, f.device)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(ctx, events, []byte("not checked by the broker")); err != nil {
		t.Errorf("Publish over mutual TLS: %v", err)
	}
}

func TestPublishRefusesOtherTopics(t *testing.T) {
	f := newFixture(t, "acme")
	l := f.offlineLink(t, t.TempDir())
	for _, name := range []string{
		"gitfleet/v1/acme/devices/device-2/events",
		"gitfleet/v1/acme/devices/device-1/desired",
		"gitfleet/v1/acme/channels/stable",
	} {
		if err := l.Publish(context.Background(), name, []byte("x")); err == nil {
			t.Errorf("Publish(%s) = nil, want an error", name)
		}
	}
}
