package link

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/trust"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// now is the device's clock in the tests that set it.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a trust root and what the server signs with it.
type fixture struct {
	trust    *bundletest.Trust
	verifier *trust.Verifier
	fleet    string
	channel  string
	device   string
}

func newFixture(t *testing.T, fleet string) *fixture {
	t.Helper()
	tr := bundletest.NewTrust(t, 1, 1, time.Now().Add(24*time.Hour*365))
	return &fixture{trust: tr, verifier: linktest.Verifier(t, tr), fleet: fleet, channel: "stable", device: "device-1"}
}

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

// channelState returns a channel state of the fixture's channel, issued an
// hour before at and valid for a day from then.
func (f *fixture) channelState(seq uint64, at time.Time) *gitfleetv1.ChannelState {
	return &gitfleetv1.ChannelState{
		Fleet: f.fleet, Channel: f.channel, Sequence: seq,
		IssuedAt: timestamppb.New(at.Add(-time.Hour)), ExpiresAt: timestamppb.New(at.Add(23 * time.Hour)),
		Release: release("1.4.0"), Wave: &gitfleetv1.Wave{Threshold: gitfleetv1.MaxThreshold},
		RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE,
	}
}

func (f *fixture) desiredState(device string, seq uint64, at time.Time) *gitfleetv1.DesiredState {
	return &gitfleetv1.DesiredState{
		Fleet: f.fleet, DeviceId: device, Sequence: seq,
		IssuedAt: timestamppb.New(at.Add(-time.Hour)), ExpiresAt: timestamppb.New(at.Add(23 * time.Hour)),
		Action: gitfleetv1.Action_ACTION_PIN, Release: release("1.3.0"),
	}
}

// sign signs m with the timestamp role's key, as the server does.
func (f *fixture) sign(t *testing.T, m proto.Message) []byte {
	t.Helper()
	return linktest.Sign(t, m, f.trust.Time)
}

func (f *fixture) topics(t *testing.T) (channel, desired string) {
	t.Helper()
	channel, err := topic.Channel(f.fleet, f.channel)
	if err != nil {
		t.Fatal(err)
	}
	desired, err = topic.Desired(f.fleet, f.device)
	if err != nil {
		t.Fatal(err)
	}
	return channel, desired
}

// tamper flips a bit of the first signature of the signed message b.
func tamper(t *testing.T, b []byte) []byte {
	t.Helper()
	env, err := gitfleetv1.DecodeSignedMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	env.Signatures[0].Sig[0] ^= 1
	out, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// offlineLink returns a Link that is never Run: its checks work alone.
func (f *fixture) offlineLink(t *testing.T, dir string) *Link {
	t.Helper()
	l, err := New(Config{Broker: "tcp://127.0.0.1:1", Fleet: f.fleet, Device: f.device, Channel: f.channel, Dir: dir},
		f.verifier, Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAccept(t *testing.T) {
	f := newFixture(t, "acme")
	chTopic, desTopic := f.topics(t)
	otherDesired, err := topic.Desired(f.fleet, "device-2")
	if err != nil {
		t.Fatal(err)
	}
	// Every case starts from a link that accepted channel sequence 5.
	accepted := f.sign(t, f.channelState(5, now))
	otherChannel := f.channelState(6, now)
	otherChannel.Channel = "beta"
	otherRelease := f.channelState(5, now)
	otherRelease.Release = release("1.4.1")
	expired := f.channelState(6, now.Add(-25*time.Hour))
	unsigned, err := gitfleetv1.NewSignedMessage(f.channelState(6, now))
	if err != nil {
		t.Fatal(err)
	}
	unsignedBytes, err := proto.Marshal(unsigned)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		topic   string
		payload []byte
		want    gitfleetv1.ErrorCode // UNSPECIFIED: accepted
		ignored bool
	}{
		{name: "next channel state", topic: chTopic, payload: f.sign(t, f.channelState(6, now))},
		{name: "a jump in sequence", topic: chTopic, payload: f.sign(t, f.channelState(600, now))},
		{name: "desired state", topic: desTopic, payload: f.sign(t, f.desiredState(f.device, 1, now))},
		{name: "the accepted state again", topic: chTopic, payload: accepted, ignored: true},
		{name: "empty retained message", topic: desTopic, payload: nil, ignored: true},
		{name: "bad signature", topic: chTopic, payload: tamper(t, f.sign(t, f.channelState(6, now))),
			want: gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE},
		{name: "signed by a key of another role", topic: chTopic, payload: linktest.Sign(t, f.channelState(6, now), f.trust.Snapshot),
			want: gitfleetv1.ErrorCode_ERROR_CODE_UNTRUSTED_KEY},
		{name: "unsigned", topic: chTopic, payload: unsignedBytes, want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "expired", topic: chTopic, payload: f.sign(t, expired), want: gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED},
		{name: "replay of an older sequence", topic: chTopic, payload: f.sign(t, f.channelState(4, now)),
			want: gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE},
		{name: "accepted sequence with other content", topic: chTopic, payload: f.sign(t, otherRelease),
			want: gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE},
		{name: "another device's desired state on this device's topic", topic: desTopic,
			payload: f.sign(t, f.desiredState("device-2", 1, now)), want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "another channel's state on this channel's topic", topic: chTopic, payload: f.sign(t, otherChannel),
			want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "a message on another device's topic", topic: otherDesired,
			payload: f.sign(t, f.desiredState("device-2", 1, now)), want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "a channel state on the desired topic", topic: desTopic, payload: f.sign(t, f.channelState(6, now)),
			want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "not a gitfleet topic", topic: "gitfleet/v2/acme/channels/stable", payload: accepted,
			want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
		{name: "not protobuf", topic: chTopic, payload: []byte("{\"sequence\": 99}"),
			want: gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := f.offlineLink(t, t.TempDir())
			ctx := context.Background()
			if _, err := l.accept(ctx, chTopic, accepted, now); err != nil {
				t.Fatalf("setup: %v", err)
			}
			st, err := l.accept(ctx, tc.topic, tc.payload, now)
			switch {
			case tc.ignored:
				if !errors.Is(err, errIgnored) {
					t.Errorf("accept = %v, want it ignored", err)
				}
			case tc.want == gitfleetv1.ErrorCode_ERROR_CODE_UNSPECIFIED:
				if err != nil {
					t.Fatalf("accept = %v, want it accepted", err)
				}
				if got, want := st.Topic.String(), tc.topic; got != want {
					t.Errorf("state's topic = %s, want %s", got, want)
				}
			default:
				if got := gitfleetv1.ErrorCodeOf(err); got != tc.want {
					t.Errorf("accept = %v (%v), want %v", err, got, tc.want)
				}
				t.Logf("refused: %v", err)
			}
		})
	}
}

func TestAcceptedSequenceSurvivesARestart(t *testing.T) {
	f := newFixture(t, "acme")
	chTopic, _ := f.topics(t)
	dir := t.TempDir()
	ctx := context.Background()
	five := f.sign(t, f.channelState(5, now))
	if _, err := f.offlineLink(t, dir).accept(ctx, chTopic, five, now); err != nil {
		t.Fatal(err)
	}

	l := f.offlineLink(t, dir) // the agent restarted
	if _, err := l.accept(ctx, chTopic, f.sign(t, f.channelState(4, now)), now); gitfleetv1.ErrorCodeOf(err) != gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE {
		t.Errorf("replay of 4 after a restart: accept = %v, want a stale message", err)
	}
	// The retained state, delivered again, is handed over once per run: the
	// restarted agent must learn what its channel says.
	if _, err := l.accept(ctx, chTopic, five, now); err != nil {
		t.Errorf("first sight of the accepted state after a restart: %v, want it accepted", err)
	}
	if _, err := l.accept(ctx, chTopic, five, now); !errors.Is(err, errIgnored) {
		t.Errorf("second sight: %v, want it ignored", err)
	}
}

func TestAcceptRefusesAnExpiredRoot(t *testing.T) {
	f := newFixture(t, "acme")
	chTopic, _ := f.topics(t)
	l := f.offlineLink(t, t.TempDir())
	l.verifier.Now = func() time.Time { return f.verifier.Expires.Add(time.Second) }
	_, err := l.accept(context.Background(), chTopic, f.sign(t, f.channelState(1, now)), now)
	if got, want := gitfleetv1.ErrorCodeOf(err), gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED; got != want {
		t.Errorf("accept = %v (%v), want %v", err, got, want)
	}
}

func TestReaches(t *testing.T) {
	const fleet, device = "acme", "device-1"
	bucket := gitfleetv1.WaveBucket(fleet, device)
	active := gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE
	for _, tc := range []struct {
		name string
		cs   *gitfleetv1.ChannelState
		want bool
	}{
		{"every device", &gitfleetv1.ChannelState{RolloutState: active, Wave: &gitfleetv1.Wave{Threshold: gitfleetv1.MaxThreshold}}, true},
		{"no device", &gitfleetv1.ChannelState{RolloutState: active, Wave: &gitfleetv1.Wave{Threshold: 0}}, false},
		{"threshold at the bucket", &gitfleetv1.ChannelState{RolloutState: active, Wave: &gitfleetv1.Wave{Threshold: bucket}}, false},
		{"threshold just above the bucket", &gitfleetv1.ChannelState{RolloutState: active, Wave: &gitfleetv1.Wave{Threshold: bucket + 1}}, true},
		{"no wave", &gitfleetv1.ChannelState{RolloutState: active}, false},
		{"paused", &gitfleetv1.ChannelState{RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED,
			Wave: &gitfleetv1.Wave{Threshold: gitfleetv1.MaxThreshold}}, false},
		{"aborted", &gitfleetv1.ChannelState{RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ABORTED,
			Wave: &gitfleetv1.Wave{Threshold: gitfleetv1.MaxThreshold}}, false},
		{"nil state", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reaches(fleet, device, tc.cs); got != tc.want {
				t.Errorf("Reaches(bucket %d) = %v, want %v", bucket, got, tc.want)
			}
		})
	}
}

func TestNewRefusesABadConfig(t *testing.T) {
	f := newFixture(t, "acme")
	good := func() Config {
		return Config{Broker: "tcp://127.0.0.1:1883", Fleet: "acme", Device: "device-1", Channel: "stable", Dir: t.TempDir()}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no scheme", func(c *Config) { c.Broker = "127.0.0.1:1883" }, "Config.Broker"},
		{"no port", func(c *Config) { c.Broker = "tcp://broker" }, "Config.Broker"},
		{"websocket", func(c *Config) { c.Broker = "ws://127.0.0.1:80" }, "scheme"},
		{"TLS files on tcp", func(c *Config) { c.CAFile = "ca.pem" }, "use ssl://"},
		{"certificate without key", func(c *Config) {
			c.Broker, c.CertFile = "ssl://127.0.0.1:8883", "device.crt"
		}, "set both"},
		{"missing CA file", func(c *Config) { c.Broker, c.CAFile = "ssl://127.0.0.1:8883", "/nonexistent/ca.pem" }, "Config.CAFile"},
		{"device with a slash", func(c *Config) { c.Device = "a/b" }, "Config.Device"},
		{"no channel", func(c *Config) { c.Channel = "" }, "Config.Fleet or Channel"},
		{"no directory", func(c *Config) { c.Dir = "" }, "Config.Dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.modify(&cfg)
			_, err := New(cfg, f.verifier, Handlers{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
