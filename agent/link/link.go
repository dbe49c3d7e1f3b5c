package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/backoff"
	"github.com/gitfleet/gitfleet/internal/tlsfiles"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// Config says which broker a Link talks to, as whom, and what it follows.
type Config struct {
	// Broker is the broker's URL: tcp://HOST:PORT, or ssl://HOST:PORT for
	// TLS (mqtt:// and mqtts:// are the same).
	Broker string
	// Fleet, Device and Channel are the device's fleet, its id and the
	// channel it follows.
	Fleet, Device, Channel string
	// ClientID is the MQTT client id. Empty means Device: one device, one
	// persistent session.
	ClientID string
	// Username and Password authenticate with a password; with mutual TLS
	// the broker may take the certificate's name instead.
	Username, Password string
	// CAFile is the PEM file of the CAs that sign the broker's certificate;
	// empty means the system's. CertFile and KeyFile, if set, are the
	// device's client certificate and key (PEM) for mutual TLS.
	CAFile, CertFile, KeyFile string
	// Dir holds the last accepted sequence of each topic; New creates it.
	Dir string

	// KeepAlive is the MQTT keep-alive interval, in whole seconds (default
	// 30 s). The link pings a silent broker after it and gives up on the
	// connection if no answer comes within it again, so a connection that
	// died without a word is noticed within about twice KeepAlive.
	KeepAlive time.Duration
	// Heartbeat is how often the status is published again even if it did
	// not change (default 5 min).
	Heartbeat time.Duration
	// ConnectTimeout bounds one connection attempt (default 30 s).
	ConnectTimeout time.Duration
	// AckTimeout bounds the wait for a PUBACK in Publish (default 1 min).
	AckTimeout time.Duration
	// Reconnect paces connection attempts after a failure or a loss. The zero
	// value means 1 s doubling to at most 2 min, with full jitter, so a
	// fleet that lost its broker does not come back in lockstep.
	Reconnect backoff.Policy
}

// Handlers receive what a Link accepts and refuses.
type Handlers struct {
	// State is called with each accepted channel or desired state, one call
	// at a time, from a goroutine Run owns. While it runs, newer states
	// replace older ones of the same topic, so it sees the latest of each;
	// long work (an install) belongs on another goroutine.
	State func(ctx context.Context, s State)
	// Refused, if set, is called with each refused message and why, on the
	// goroutine that receives messages: it must return quickly. Its err
	// carries the wire code (gitfleetv1.ErrorCodeOf).
	Refused func(topic string, err error)
}

// ErrClosed is returned by Publish once Run has returned.
var ErrClosed = errors.New("link closed")

// stableAfter is how long a connection must last for the reconnect backoff
// to start again from its base: a broker that takes the connection and then
// drops it at once (a clashing client id) must not be hammered.
const stableAfter = time.Minute

// A Link is the agent's MQTT connection. It keeps one persistent session
// with the broker, reconnecting as needed; marks the device online with a
// retained status and offline with its last will; publishes the device's
// status and events; and verifies the signed channel and desired states it
// receives before handing them over.
type Link struct {
	cfg      Config
	verifier *trust.Verifier
	h        Handlers
	log      *slog.Logger
	now      func() time.Time
	seen     *seen
	opts     *mqtt.ClientOptions

	channelTopic, desiredTopic, statusTopic string

	mu      sync.Mutex
	running bool
	closed  bool
	sess    *session
	status  *gitfleetv1.DeviceStatus // as the caller last set it
	states  map[topic.Kind]State     // accepted, not yet handed over

	statusChanged chan struct{}
	stateReady    chan struct{}
}

// A session is one connection attempt and, if it succeeds, the connection.
type session struct {
	client   mqtt.Client
	up, down chan struct{}
	upOnce   sync.Once
	downOnce sync.Once
}

func (s *session) markUp()   { s.upOnce.Do(func() { close(s.up) }) }
func (s *session) markDown() { s.downOnce.Do(func() { close(s.down) }) }

// isDown reports whether the session has ended.
func (s *session) isDown() bool {
	select {
	case <-s.down:
		return true
	default:
		return false
	}
}

// New returns a Link for cfg that accepts the states signed by a threshold
// of verifier's keys: the timestamp role of the device's trusted root
// (Root.Verifier(trust.RoleTimestamp)). It checks cfg and loads the
// accepted sequences; Run connects.
func New(cfg Config, verifier *trust.Verifier, h Handlers, log *slog.Logger) (*Link, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if verifier == nil {
		return nil, errors.New("link: no verifier: pass the timestamp role's Verifier of the trusted root")
	}
	cfg.setDefaults()
	l := &Link{cfg: cfg, verifier: verifier, h: h, log: log.With("device", cfg.Device), now: time.Now,
		states: map[topic.Kind]State{}, statusChanged: make(chan struct{}, 1), stateReady: make(chan struct{}, 1)}
	var err error
	if l.channelTopic, err = topic.Channel(cfg.Fleet, cfg.Channel); err != nil {
		return nil, fmt.Errorf("link: Config.Fleet or Channel: %w", err)
	}
	if l.desiredTopic, err = topic.Desired(cfg.Fleet, cfg.Device); err != nil {
		return nil, fmt.Errorf("link: Config.Device: %w", err)
	}
	if l.statusTopic, err = topic.Status(cfg.Fleet, cfg.Device); err != nil {
		return nil, fmt.Errorf("link: Config.Device: %w", err)
	}
	if cfg.Dir == "" {
		return nil, errors.New("link: no directory for the accepted sequences: set Config.Dir")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	if l.seen, err = loadSeen(filepath.Join(cfg.Dir, seenName)); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	if l.opts, err = l.clientOptions(); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	l.sess = &session{client: mqtt.NewClient(l.opts), up: make(chan struct{}), down: make(chan struct{})}
	return l, nil
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = c.Device
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	// MQTT counts it in whole seconds, and 0 would turn it off.
	c.KeepAlive = max(c.KeepAlive.Round(time.Second), time.Second)
	if c.Heartbeat == 0 {
		c.Heartbeat = 5 * time.Minute
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = time.Minute
	}
	if c.Reconnect == (backoff.Policy{}) {
		c.Reconnect = backoff.Policy{Base: time.Second, Max: 2 * time.Minute}
	}
}

// clientOptions returns paho's options for the link: a persistent session
// (clean session off) under a fixed client id, the last will, and no
// reconnecting of paho's own, since Run reconnects with jitter.
func (l *Link) clientOptions() (*mqtt.ClientOptions, error) {
	cfg := l.cfg
	u, err := url.Parse(cfg.Broker)
	if err != nil {
		return nil, fmt.Errorf("Config.Broker: %w", err)
	}
	if u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("Config.Broker %q: want tcp://HOST:PORT or ssl://HOST:PORT", cfg.Broker)
	}
	opts := mqtt.NewClientOptions()
	switch u.Scheme {
	case "tcp", "mqtt":
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
			return nil, fmt.Errorf("Config.Broker %q is not TLS, but CAFile, CertFile or KeyFile is set: use ssl://", cfg.Broker)
		}
		opts.AddBroker("tcp://" + u.Host)
	case "ssl", "mqtts":
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts.AddBroker("ssl://" + u.Host).SetTLSConfig(tc)
	default:
		return nil, fmt.Errorf("Config.Broker %q: scheme %q, want tcp or ssl", cfg.Broker, u.Scheme)
	}
	if cfg.ClientID == "" || len(cfg.ClientID) > 65535 {
		return nil, fmt.Errorf("Config.ClientID %q: want 1 to 65535 bytes", cfg.ClientID)
	}
	will, err := proto.Marshal(&gitfleetv1.DeviceStatus{DeviceId: cfg.Device, ProtocolVersion: gitfleetv1.ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("last will: %w", err)
	}
	opts.SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, without paho's fallback to 3.1
		SetCleanSession(false).
		SetOrderMatters(true). // one topic's states are handled in order
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetBinaryWill(l.statusTopic, will, 1, true).
		SetDefaultPublishHandler(l.receive).
		SetConnectionLostHandler(l.lost)
	return opts, nil
}

// tlsConfig builds the TLS configuration from the CA, certificate and key
// files.
func (c Config) tlsConfig() (*tls.Config, error) {
	return tlsfiles.Client{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		CAField: "Config.CAFile", CertField: "Config.CertFile and KeyFile"}.Config()
}

// Run connects to the broker and keeps the link up until ctx ends:
// it subscribes to the channel and desired topics, publishes the status on
// connect, on change and every Heartbeat, hands accepted states to
// Handlers.State, and reconnects after a loss with a capped, jittered
// backoff. When ctx ends it publishes the offline status (the last will's
// payload) and disconnects, then returns nil. Run may be called once.
func (l *Link) Run(ctx context.Context) error {
	l.mu.Lock()
	if l.running || l.closed {
		l.mu.Unlock()
		return errors.New("link: Run called twice")
	}
	l.running = true
	l.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.dispatch(ctx)
	}()
	l.connectLoop(ctx)
	wg.Wait()
	return nil
}

// connectLoop connects, serves the connection until it is lost, waits and
// connects again, until ctx ends.
func (l *Link) connectLoop(ctx context.Context) {
	failures := 0
	for {
		l.mu.Lock()
		s := l.sess
		l.mu.Unlock()
		start := time.Now()
		err := l.connect(ctx, s)
		if err == nil {
			l.log.Info("link: connected", "broker", l.cfg.Broker)
			l.serve(ctx, s)
			if ctx.Err() != nil {
				l.shutdown(s)
				return
			}
			err = errors.New("connection lost")
			if time.Since(start) >= stableAfter {
				failures = 0
			}
		}
		s.markDown()
		if ctx.Err() != nil {
			l.close()
			return
		}
		delay := l.cfg.Reconnect.Delay(failures)
		failures++
		l.log.Warn("link: no connection to the broker; retrying", "broker", l.cfg.Broker, "in", delay.Round(time.Millisecond), "err", err)
		l.mu.Lock()
		// The same paho client carries the session's in-flight messages.
		l.sess = &session{client: s.client, up: make(chan struct{}), down: make(chan struct{})}
		l.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			l.close()
			return
		case <-t.C:
		}
	}
}

// connect makes one connection attempt.
func (l *Link) connect(ctx context.Context, s *session) error {
	tok := s.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// The attempt ends within ConnectTimeout; wait, so nothing is left
		// running, and undo it if it succeeded.
		tok.Wait()
		if tok.Error() == nil {
			s.client.Disconnect(0)
		}
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connect to %s: %w", l.cfg.Broker, err)
	}
	s.markUp()
	return nil
}

// serve subscribes and keeps the status published on connection s until
// the connection is lost or ctx ends.
func (l *Link) serve(ctx context.Context, s *session) {
	subscribed := l.subscribe(ctx, s)
	l.publishStatus(s)
	heartbeat := time.NewTicker(l.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.down:
			return
		case <-l.statusChanged:
			l.publishStatus(s)
		case <-heartbeat.C:
			if !subscribed {
				subscribed = l.subscribe(ctx, s)
			}
			l.publishStatus(s)
		}
	}
}

// subscribe subscribes to the channel and desired topics at QoS 1, which
// also brings their retained states, and reports whether the broker
// granted both. A refusal is logged and retried at the next heartbeat.
func (l *Link) subscribe(ctx context.Context, s *session) bool {
	filters := map[string]byte{l.channelTopic: 1, l.desiredTopic: 1}
	tok := s.client.SubscribeMultiple(filters, nil) // nil: the default handler, receive
	var err error
	select {
	case <-tok.Done():
		err = tok.Error()
	case <-s.down:
		return false
	case <-ctx.Done():
		return false
	}
	if err == nil {
		for f, code := range tok.(*mqtt.SubscribeToken).Result() {
			if code > 2 {
				err = fmt.Errorf("the broker refused the subscription to %s (code %#x)", f, code)
			}
		}
	}
	if err != nil {
		l.log.Error("link: subscribe; retrying at the next heartbeat", "err", err)
		return false
	}
	return true
}

// publishStatus publishes the status, retained, at QoS 1, without waiting
// for the broker: the next change or heartbeat supersedes it anyway. Until
// the first SetStatus there is nothing to say: a bare "online" without the
// slot and release would only make the server forget what it knew.
func (l *Link) publishStatus(s *session) {
	st := l.onlineStatus()
	if st == nil {
		return
	}
	b, err := proto.Marshal(st)
	if err != nil {
		l.log.Error("link: encode the status", "err", err)
		return
	}
	s.client.Publish(l.statusTopic, 1, true, b)
}

// onlineStatus returns the status to publish now, or nil before the first
// SetStatus.
func (l *Link) onlineStatus() *gitfleetv1.DeviceStatus {
	l.mu.Lock()
	if l.status == nil {
		l.mu.Unlock()
		return nil
	}
	st := proto.Clone(l.status).(*gitfleetv1.DeviceStatus)
	l.mu.Unlock()
	st.DeviceId, st.ProtocolVersion = l.cfg.Device, gitfleetv1.ProtocolVersion
	st.Online, st.Time = true, timestamppb.New(l.now())
	return st
}

// SetStatus sets the device's status and publishes it now, if it changed
// and the link is connected, and at every heartbeat. The link fills in
// device_id, protocol_version, online and time itself. Every change is
// published, progress included: call it at the pace the server should
// hear. SetStatus returns an error, and keeps the previous status, if st is
// not a valid DeviceStatus.
func (l *Link) SetStatus(st *gitfleetv1.DeviceStatus) error {
	if st == nil {
		st = new(gitfleetv1.DeviceStatus)
	}
	st = proto.Clone(st).(*gitfleetv1.DeviceStatus)
	st.DeviceId, st.ProtocolVersion, st.Online, st.Time = l.cfg.Device, gitfleetv1.ProtocolVersion, true, timestamppb.New(l.now())
	if err := st.Validate(); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	st.Time = nil
	l.mu.Lock()
	changed := !proto.Equal(st, l.status)
	l.status = st
	l.mu.Unlock()
	if changed {
		select {
		case l.statusChanged <- struct{}{}:
		default:
		}
	}
	return nil
}

// shutdown marks the device offline with the last will's payload — a clean
// disconnect does not make the broker send the will — and disconnects.
func (l *Link) shutdown(s *session) {
	will := &gitfleetv1.DeviceStatus{DeviceId: l.cfg.Device, ProtocolVersion: gitfleetv1.ProtocolVersion}
	if b, err := proto.Marshal(will); err == nil {
		tok := s.client.Publish(l.statusTopic, 1, true, b)
		if !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
			l.log.Warn("link: publish the offline status before disconnecting", "err", tok.Error())
		}
	}
	l.close()
	s.client.Disconnect(250)
	l.log.Info("link: disconnected", "broker", l.cfg.Broker)
}

// close ends the link for Publish.
func (l *Link) close() {
	l.mu.Lock()
	l.closed = true
	s := l.sess
	l.mu.Unlock()
	s.markDown()
}

// lost is paho's connection-lost handler.
func (l *Link) lost(_ mqtt.Client, err error) {
	l.mu.Lock()
	s := l.sess
	l.mu.Unlock()
	l.log.Warn("link: connection lost", "err", err)
	s.markDown()
}

// Publish publishes payload on the topic called name at QoS 1, not
// retained, and returns nil once the broker acknowledged it (PUBACK). It
// waits while the link is not connected. If the connection is lost before
// the acknowledgment, Publish returns an error and the caller sends the
// message again: the broker may then see it twice. A device may publish
// only to its own status and events topics. Publish implements
// outbox.Publisher.
func (l *Link) Publish(ctx context.Context, name string, payload []byte) error {
	if err := topic.CheckDevicePublish(l.cfg.Fleet, l.cfg.Device, name); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	for {
		l.mu.Lock()
		s, closed := l.sess, l.closed
		l.mu.Unlock()
		if closed {
			return fmt.Errorf("publish %s: %w", name, ErrClosed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.down:
			continue // the attempt failed: wait for the next
		case <-s.up:
		}
		return l.publish(ctx, s, name, payload)
	}
}

// publish sends one message on connection s and waits for its PUBACK.
func (l *Link) publish(ctx context.Context, s *session, name string, payload []byte) error {
	tok := s.client.Publish(name, 1, false, payload)
	t := time.NewTimer(l.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		// After a reconnect paho sends its in-flight messages again and
		// completes the original tokens before any PUBACK: only a token that
		// completed while its own connection was up means acknowledged.
		if s.isDown() {
			return fmt.Errorf("publish %s: the connection was lost; the acknowledgment is unknown", name)
		}
		return nil
	case <-s.down:
		return fmt.Errorf("publish %s: the connection was lost before the broker acknowledged", name)
	case <-t.C:
		return fmt.Errorf("publish %s: no acknowledgment after %v", name, l.cfg.AckTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// receive is paho's handler for every message: it runs the checks, then
// queues an accepted state for dispatch.
func (l *Link) receive(_ mqtt.Client, m mqtt.Message) {
	name := m.Topic()
	st, err := l.accept(context.Background(), name, m.Payload(), l.now())
	switch {
	case errors.Is(err, errIgnored):
		l.log.Debug("link: nothing new", "topic", name)
		return
	case err != nil:
		l.log.Warn("link: refused a message", "topic", name, "code", gitfleetv1.ErrorCodeOf(err).String(), "err", err)
		if l.h.Refused != nil {
			l.h.Refused(name, err)
		}
		return
	}
	l.log.Info("link: accepted", "topic", name, "sequence", st.Sequence(), "release", st.release())
	l.mu.Lock()
	l.states[st.Topic.Kind] = st
	l.mu.Unlock()
	select {
	case l.stateReady <- struct{}{}:
	default:
	}
}

// dispatch hands accepted states to Handlers.State, the desired state
// before the channel's since it overrides it, until ctx ends.
func (l *Link) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.stateReady:
		}
		l.mu.Lock()
		var batch []State
		for _, k := range []topic.Kind{topic.KindDesired, topic.KindChannel} {
			if st, ok := l.states[k]; ok {
				batch = append(batch, st)
				delete(l.states, k)
			}
		}
		l.mu.Unlock()
		for _, st := range batch {
			if l.h.State != nil {
				l.h.State(ctx, st)
			}
		}
	}
}
