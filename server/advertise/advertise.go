package advertise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/firmware/keys"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/bus"
)

// DefaultLifetime is how long a state is valid when Config.Lifetime is zero.
const DefaultLifetime = time.Hour

// retryDelay is how long the advertiser waits after a failed republish.
const retryDelay = 5 * time.Second

// Errors a caller decides on.
var (
	// ErrNotFound: the advertiser holds no state for that channel or device.
	ErrNotFound = errors.New("no state advertised")
	// ErrNotLifted: a device's override stands; lift it with ACTION_NONE
	// before deleting it.
	ErrNotLifted = errors.New("override not lifted")
)

// Broker is the MQTT connection an Advertiser publishes through and watches
// its topics on: a bus.Client.
type Broker interface {
	Publish(ctx context.Context, name string, payload []byte, retained bool) error
	Subscribe(ctx context.Context, filter string, h bus.Handler) error
}

// Config says which fleet an Advertiser speaks for and how it signs.
type Config struct {
	// Fleet is the fleet whose channel and desired topics the advertiser
	// publishes.
	Fleet string
	// Signers are the online keys of the trust root's timestamp role. Each
	// signs every state, so a device whose root asks for a threshold of
	// them finds it.
	Signers []*keys.Signer
	// Lifetime is how long a state is valid from when it is issued (default
	// DefaultLifetime). The advertiser republishes each state when 40 to 50%
	// of it remains.
	Lifetime time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// An Advertiser publishes a fleet's signed channel states and device
// overrides, retained, and keeps them fresh. See the package documentation
// for its sequence numbers and what it learns from the broker.
type Advertiser struct {
	cfg      Config
	broker   Broker
	log      *slog.Logger
	verifier map[string]signature.Verifier // by key id, for states found on the broker
	jitter   time.Duration                 // this advertiser's share of the refresh window

	// publishing serializes the making and publishing of states, so that
	// sequences leave in order; it is never held by a message handler.
	publishing sync.Mutex

	mu     sync.Mutex
	last   uint64            // the highest sequence issued or seen
	states map[string]*state // by topic name
	wake   chan struct{}     // tells Run that states changed
}

// A state is the latest signed state on one topic: one this advertiser
// published, or one found on the broker.
type state struct {
	topic   topic.Topic
	channel *gitfleetv1.ChannelState // exactly one of channel and desired
	desired *gitfleetv1.DesiredState
	expires time.Time
	failed  time.Time // when republishing it last failed
}

func (s *state) sequence() uint64 {
	if s.channel != nil {
		return s.channel.GetSequence()
	}
	return s.desired.GetSequence()
}

// New returns an Advertiser for cfg that publishes through b. Run watches
// the broker and keeps states fresh; the Set methods publish at once.
func New(cfg Config, b Broker, log *slog.Logger) (*Advertiser, error) {
	if err := topic.CheckID(cfg.Fleet); err != nil {
		return nil, fmt.Errorf("advertiser: Config.Fleet: %w", err)
	}
	if len(cfg.Signers) == 0 {
		return nil, errors.New("advertiser: Config.Signers is empty: give the timestamp role's online keys")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime < 2*time.Second {
		return nil, fmt.Errorf("advertiser: Config.Lifetime %v is under 2 s", cfg.Lifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Advertiser{
		cfg: cfg, broker: b, log: log,
		verifier: map[string]signature.Verifier{},
		jitter:   rand.N(cfg.Lifetime / 10),
		states:   map[string]*state{},
		wake:     make(chan struct{}, 1),
	}
	for _, s := range cfg.Signers {
		v, err := keys.Verifier(s.Public)
		if err != nil {
			return nil, fmt.Errorf("advertiser: key %s: %w", s.ID, err)
		}
		a.verifier[s.ID] = v
	}
	return a, nil
}

// Run watches the fleet's channel and desired topics on the broker and
// republishes every state it knows before it expires, until ctx ends; then
// it returns nil. Watching, it learns the states already retained there —
// published before a restart, or by another replica — and their sequences,
// and keeps them fresh too.
func (a *Advertiser) Run(ctx context.Context) error {
	for _, k := range []topic.Kind{topic.KindChannel, topic.KindDesired} {
		f, err := topic.Filter(k, a.cfg.Fleet)
		if err != nil {
			return fmt.Errorf("advertiser: %w", err)
		}
		if err := a.broker.Subscribe(ctx, f, a.observe); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("advertiser: watch %s: %w", f, err)
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		case <-timer.C:
		}
		a.refreshDue(ctx)
		timer.Reset(a.untilNextDue())
	}
}

// due returns when s is to be republished: when less than half the
// lifetime remains, and up to a tenth of it later, by this advertiser's
// jitter, so that of several replicas one republishes and the others see it
// done. A state that failed to go out waits retryDelay.
func (a *Advertiser) due(s *state) time.Time {
	at := s.expires.Add(-a.cfg.Lifetime / 2).Add(a.jitter)
	if retry := s.failed.Add(retryDelay); retry.After(at) {
		return retry
	}
	return at
}

// untilNextDue returns how long until the next state is due.
func (a *Advertiser) untilNextDue() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := a.cfg.Lifetime
	now := a.cfg.Now()
	for _, s := range a.states {
		if d := a.due(s).Sub(now); d < next {
			next = d
		}
	}
	return max(next, 10*time.Millisecond)
}

// refreshDue republishes every state that is due.
func (a *Advertiser) refreshDue(ctx context.Context) {
	a.mu.Lock()
	now := a.cfg.Now()
	var names []string
	for name, s := range a.states {
		if !a.due(s).After(now) {
			names = append(names, name)
		}
	}
	a.mu.Unlock()
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		err := a.republish(ctx, name)
		if err != nil && ctx.Err() == nil {
			a.log.Error("advertiser: republish; retrying", "topic", name, "err", err)
		}
	}
}

// republish publishes the state on the topic called name again, with a new
// sequence and expiry, if it is still due: another replica may have done it
// meanwhile.
func (a *Advertiser) republish(ctx context.Context, name string) error {
	a.publishing.Lock()
	defer a.publishing.Unlock()
	a.mu.Lock()
	s, ok := a.states[name]
	if !ok || a.due(s).After(a.cfg.Now()) {
		a.mu.Unlock()
		return nil
	}
	var m proto.Message
	if s.channel != nil {
		m = proto.Clone(s.channel)
	} else {
		m = proto.Clone(s.desired)
	}
	a.mu.Unlock()
	if _, err := a.publish(ctx, name, m); err != nil {
		a.mu.Lock()
		if cur, ok := a.states[name]; ok {
			cur.failed = a.cfg.Now()
		}
		a.mu.Unlock()
		return err
	}
	return nil
}

// publish stamps m, a *ChannelState or *DesiredState for the topic called
// name, with the next sequence, the issue time and the expiry, signs it,
// publishes it retained and records it. The caller holds a.publishing.
func (a *Advertiser) publish(ctx context.Context, name string, m proto.Message) (*state, error) {
	t, err := topic.Parse(name)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	a.mu.Lock()
	seq := uint64(max(now.UnixNano(), 1))
	if old, ok := a.states[name]; ok {
		seq = max(seq, old.sequence()+1)
	}
	seq = max(seq, a.last+1)
	a.last = seq
	a.mu.Unlock()

	issued, expires := timestamppb.New(now), timestamppb.New(now.Add(a.cfg.Lifetime))
	s := &state{topic: t, expires: expires.AsTime()}
	switch m := m.(type) {
	case *gitfleetv1.ChannelState:
		m.Sequence, m.IssuedAt, m.ExpiresAt = seq, issued, expires
		s.channel = m
	case *gitfleetv1.DesiredState:
		m.Sequence, m.IssuedAt, m.ExpiresAt = seq, issued, expires
		s.desired = m
	}
	payload, err := a.sign(m)
	if err != nil {
		return nil, err
	}
	if err := a.broker.Publish(ctx, name, payload, true); err != nil {
		return nil, err
	}
	a.record(name, s)
	return s, nil
}

// sign returns the MQTT payload carrying m in a SignedMessage signed by
// every key.
func (a *Advertiser) sign(m proto.Message) ([]byte, error) {
	env, err := gitfleetv1.NewSignedMessage(m)
	if err != nil {
		return nil, err
	}
	for _, s := range a.cfg.Signers {
		sig, err := s.SignMessage(bytes.NewReader(env.SigningBytes()))
		if err != nil {
			return nil, fmt.Errorf("sign with key %s: %w", s.ID, err)
		}
		env.Signatures = append(env.Signatures, &gitfleetv1.Signature{KeyId: s.ID, Sig: sig})
	}
	b, err := proto.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode signed message: %w", err)
	}
	if len(b) > gitfleetv1.MaxMessageSize {
		return nil, fmt.Errorf("signed message of %d bytes is over the %d devices read", len(b), gitfleetv1.MaxMessageSize)
	}
	return b, nil
}

// record makes s the state on the topic called name, unless a later one is
// there already, and wakes Run.
func (a *Advertiser) record(name string, s *state) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = max(a.last, s.sequence())
	if old, ok := a.states[name]; ok && old.sequence() > s.sequence() {
		return
	}
	a.states[name] = s
	a.signal()
}

// forget drops the state on the topic called name, and wakes Run.
func (a *Advertiser) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.states, name)
	a.signal()
}

// signal wakes Run; the caller holds a.mu.
func (a *Advertiser) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// observe learns a message found on one of the fleet's channel or desired
// topics: a state signed by one of the advertiser's keys becomes the state of
// its topic if it is later than the one held, and an empty retained message
// means the topic was cleared. Anything else is ignored.
func (a *Advertiser) observe(m bus.Message) {
	defer m.Ack()
	if len(m.Payload) == 0 {
		a.forget(m.Topic)
		return
	}
	s, err := a.verify(m.Topic, m.Payload)
	if err != nil {
		a.log.Warn("advertiser: ignoring a state on the broker", "topic", m.Topic, "err", err)
		return
	}
	a.record(m.Topic, s)
}

// verify checks a state found on the broker as a device would, against the
// advertiser's own keys, except for its expiry: an expired state is
// republished at once.
func (a *Advertiser) verify(name string, payload []byte) (*state, error) {
	t, err := topic.Parse(name)
	if err != nil {
		return nil, err
	}
	env, err := gitfleetv1.DecodeSignedMessage(payload)
	if err != nil {
		return nil, err
	}
	signed := false
	for _, sig := range env.GetSignatures() {
		v, ok := a.verifier[sig.GetKeyId()]
		if ok && v.VerifySignature(bytes.NewReader(sig.GetSig()), bytes.NewReader(env.SigningBytes())) == nil {
			signed = true
			break
		}
	}
	if !signed {
		return nil, errors.New("not signed by any of the advertiser's keys")
	}
	s := &state{topic: t}
	switch t.Kind {
	case topic.KindChannel:
		if s.channel, err = gitfleetv1.DecodeChannelState(env); err == nil {
			err = gitfleetv1.MatchTopic(t, s.channel)
			s.expires = s.channel.GetExpiresAt().AsTime()
		}
	case topic.KindDesired:
		if s.desired, err = gitfleetv1.DecodeDesiredState(env); err == nil {
			err = gitfleetv1.MatchTopic(t, s.desired)
			s.expires = s.desired.GetExpiresAt().AsTime()
		}
	default:
		err = fmt.Errorf("%s is not a channel or desired topic", name)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}
