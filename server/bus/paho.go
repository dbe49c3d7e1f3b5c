package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gitfleet/gitfleet/internal/tlsfiles"
)

// PahoConfig says which external broker a Paho client talks to, and as whom.
type PahoConfig struct {
	// Broker is the broker's URL: tcp://HOST:PORT, or ssl://HOST:PORT for
	// TLS (mqtt:// and mqtts:// are the same).
	Broker string
	// ClientID names the client's persistent session: one per server
	// replica, the same across its restarts, so that the broker keeps the
	// messages of its subscriptions while it is away.
	ClientID string
	// Username and Password are the server's account.
	Username, Password string
	// CAFile is the PEM file of the CAs that sign the broker's certificate;
	// empty means the system's. CertFile and KeyFile, if set, are the
	// server's client certificate and key (PEM).
	CAFile, CertFile, KeyFile string

	// KeepAlive is the MQTT keep-alive interval (default 30 s).
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (default 10 s).
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the wait between reconnection attempts
	// (default 30 s).
	MaxReconnectInterval time.Duration
}

// maxPending bounds the messages a Paho client holds for subscriptions not
// made yet.
const maxPending = 10000

// A Paho is a Client for an external broker, through paho.mqtt.golang. It
// keeps a persistent session (clean session off) under its client id and
// reconnects by itself after a loss, subscribing again to every filter. On a
// persistent session the broker sends what it kept as soon as the client
// connects, before the process subscribed again: the client holds those
// messages (up to 10,000) for the first subscription they match.
type Paho struct {
	cfg    PahoConfig
	client mqtt.Client
	log    *slog.Logger

	mu       sync.Mutex
	subs     []pahoSub
	pending  []Message
	connects int
}

type pahoSub struct {
	filter string // as given, maybe shared
	topic  string // without $share/<group>/
	h      Handler
}

// DialPaho connects to the broker of cfg, trying again until it answers or
// ctx ends. Close the client when done.
func DialPaho(ctx context.Context, cfg PahoConfig, log *slog.Logger) (*Paho, error) {
	p := &Paho{cfg: cfg, log: log}
	opts, err := p.options()
	if err != nil {
		return nil, fmt.Errorf("mqtt client: %w", err)
	}
	p.client = mqtt.NewClient(opts)
	tok := p.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		p.client.Disconnect(0)
		return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, err)
	}
	return p, nil
}

// options returns paho's options for cfg.
func (p *Paho) options() (*mqtt.ClientOptions, error) {
	cfg := p.cfg
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("PahoConfig.Broker %q: want tcp://HOST:PORT or ssl://HOST:PORT", cfg.Broker)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("PahoConfig.ClientID is empty: name the replica's session")
	}
	opts := mqtt.NewClientOptions()
	switch u.Scheme {
	case "tcp", "mqtt":
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
			return nil, fmt.Errorf("PahoConfig.Broker %q is not TLS, but CAFile, CertFile or KeyFile is set: use ssl://", cfg.Broker)
		}
		opts.AddBroker("tcp://" + u.Host)
	case "ssl", "mqtts":
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts.AddBroker("ssl://" + u.Host).SetTLSConfig(tc)
	default:
		return nil, fmt.Errorf("PahoConfig.Broker %q: scheme %q, want tcp or ssl", cfg.Broker, u.Scheme)
	}
	keepAlive := orDefault(cfg.KeepAlive, 30*time.Second)
	opts.SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, without paho's fallback to 3.1
		SetCleanSession(false).
		SetAutoAckDisabled(true). // handlers ack once they stored a message
		SetOrderMatters(true).
		SetKeepAlive(keepAlive).
		SetPingTimeout(keepAlive).
		SetConnectTimeout(orDefault(cfg.ConnectTimeout, 10*time.Second)).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(orDefault(cfg.MaxReconnectInterval, 30*time.Second)).
		SetCustomOpenConnectionFn(dial).
		SetDefaultPublishHandler(p.route).
		SetOnConnectHandler(p.connected).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.log.Warn("mqtt: connection lost; reconnecting", "broker", cfg.Broker, "err", err)
		})
	return opts, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// tlsConfig builds the TLS configuration from the CA, certificate and key
// files.
func (c PahoConfig) tlsConfig() (*tls.Config, error) {
	return tlsfiles.Client{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		CAField: "PahoConfig.CAFile", CertField: "PahoConfig.CertFile and KeyFile"}.Config()
}

// connected subscribes again to every filter after a reconnect: a broker
// that lost the session (restarted without persistence) has forgotten them.
// paho runs it on a goroutine of its own for each connection.
func (p *Paho) connected(c mqtt.Client) {
	p.mu.Lock()
	p.connects++
	if p.connects == 1 {
		// Nothing was subscribed before the first connection; what is
		// subscribed while this runs late, Subscribe subscribed itself.
		p.mu.Unlock()
		return
	}
	filters := make([]string, len(p.subs))
	for i, s := range p.subs {
		filters[i] = s.filter
	}
	p.mu.Unlock()
	for _, f := range filters {
		if err := p.subscribe(context.Background(), f); err != nil {
			p.log.Error("mqtt: subscribe again after a reconnect", "broker", p.cfg.Broker, "filter", f, "err", err)
		}
	}
}

// route hands a message to the handlers whose filters it matches, or holds
// it for a subscription to come. paho calls it for every message, one at a
// time.
func (p *Paho) route(_ mqtt.Client, pm mqtt.Message) {
	m := Message{Topic: pm.Topic(), Payload: pm.Payload(), Retained: pm.Retained(), ack: pm.Ack}
	p.mu.Lock()
	var hs []Handler
	for _, s := range p.subs {
		if matches(s.topic, m.Topic) {
			hs = append(hs, s.h)
		}
	}
	if len(hs) == 0 {
		// Left unacknowledged beyond the bound: the broker sends it again
		// after a reconnect.
		if len(p.pending) < maxPending {
			p.pending = append(p.pending, m)
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	for _, h := range hs {
		h(m)
	}
}

// Publish publishes payload on the topic called name at QoS 1, retained or
// not, and returns nil once the broker acknowledged it. While the client is
// reconnecting, paho keeps the message and sends it once connected; if ctx
// ends first, Publish returns ctx's error and the message may still go out.
func (p *Paho) Publish(ctx context.Context, name string, payload []byte, retained bool) error {
	tok := p.client.Publish(name, 1, retained, payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("publish to %s: %w", name, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish to %s: %w", name, err)
	}
	return nil
}

// Subscribe subscribes to filter at QoS 1 and hands its messages to h, now
// and after every reconnect, until Close. It returns an error if the broker
// refuses the subscription.
func (p *Paho) Subscribe(ctx context.Context, filter string, h Handler) error {
	topicFilter, _ := unshared(filter)
	p.mu.Lock()
	p.subs = append(p.subs, pahoSub{filter: filter, topic: topicFilter, h: h})
	var held []Message
	p.pending = slices.DeleteFunc(p.pending, func(m Message) bool {
		if matches(topicFilter, m.Topic) {
			held = append(held, m)
			return true
		}
		return false
	})
	p.mu.Unlock()
	for _, m := range held {
		h(m)
	}
	if err := p.subscribe(ctx, filter); err != nil {
		p.mu.Lock()
		p.subs = slices.DeleteFunc(p.subs, func(s pahoSub) bool { return s.filter == filter })
		p.mu.Unlock()
		return err
	}
	return nil
}

// subscribe sends one SUBSCRIBE and checks the broker's answer.
func (p *Paho) subscribe(ctx context.Context, filter string) error {
	tok := p.client.Subscribe(filter, 1, nil) // nil: route, the default handler
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("subscribe to %s: %w", filter, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", filter, err)
	}
	if code := tok.(*mqtt.SubscribeToken).Result()[filter]; code > 2 {
		return fmt.Errorf("subscribe to %s: the broker refused (code %#x)", filter, code)
	}
	return nil
}

// Close disconnects from the broker, waiting up to a second for work in
// flight. The broker keeps the session's subscriptions and messages for the
// next client with the same id.
func (p *Paho) Close() {
	p.client.Disconnect(1000)
}
