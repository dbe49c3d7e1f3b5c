package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
)

// pki is a throwaway certificate authority (testenv.PKI) and a broker
// certificate for 127.0.0.1 it signed.
type pki struct {
	*testenv.PKI
	certFile, keyFile string // the broker's
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{PKI: testenv.NewPKI(t)}
	p.certFile, p.keyFile = p.Issue(t, "broker", "127.0.0.1", x509.ExtKeyUsageServerAuth)
	return p
}

// login is how a test client signs in.
type login struct {
	user, password string
	tls            *tls.Config // for the TLS listener; user is then only sent
}

// client is a paho client that keeps what it receives.
type client struct {
	c       mqtt.Client
	mu      sync.Mutex
	got     []string // topics of the messages received, in order
	changed chan struct{}
}

// dial connects to addr as l with clientID, or returns the connection error.
func dial(t *testing.T, addr string, l login, clientID string, will func(*mqtt.ClientOptions)) (*client, error) {
	t.Helper()
	c := &client{changed: make(chan struct{})}
	scheme := "tcp://"
	if l.tls != nil {
		scheme = "ssl://"
	}
	opts := mqtt.NewClientOptions().AddBroker(scheme + addr).SetClientID(clientID).
		SetUsername(l.user).SetPassword(l.password).SetTLSConfig(l.tls).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.got = append(c.got, m.Topic())
			close(c.changed)
			c.changed = make(chan struct{})
		})
	if will != nil {
		will(opts)
	}
	c.c = mqtt.NewClient(opts)
	tok := c.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("connect to %s as %s: no answer in 10 s", addr, l.user)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.c.Disconnect(0) })
	return c, nil
}

// mustDial connects or fails the test.
func mustDial(t *testing.T, addr string, l login, clientID string) *client {
	t.Helper()
	c, err := dial(t, addr, l, clientID, nil)
	if err != nil {
		t.Fatalf("connect to %s as %s (client %s): %v", addr, l.user, clientID, err)
	}
	return c
}

// subscribe subscribes to filters at QoS 1 and returns the broker's codes,
// 0x80 for a refusal.
func (c *client) subscribe(t *testing.T, filters ...string) []byte {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.c.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe to %v: %v", filters, tok.Error())
	}
	res := tok.(*mqtt.SubscribeToken).Result()
	codes := make([]byte, len(filters))
	for i, f := range filters {
		codes[i] = res[f]
	}
	return codes
}

// publish publishes at QoS 1 and waits for the acknowledgment or for the
// broker to close the connection, which mochi does for a forbidden QoS 1
// publish over MQTT 3.1.1.
func (c *client) publish(t *testing.T, name string, payload []byte, retained bool) error {
	t.Helper()
	tok := c.c.Publish(name, 1, retained, payload)
	deadline := time.Now().Add(10 * time.Second)
	for !tok.WaitTimeout(20 * time.Millisecond) {
		if !c.c.IsConnectionOpen() {
			return nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish to %s: no acknowledgment in 10 s", name)
		}
	}
	return tok.Error()
}

// wait waits until a message on the topic called name arrived, failing the
// test after 10 s, and returns the topics received so far.
func (c *client) wait(t *testing.T, name string) []string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, changed := slices.Clone(c.got), c.changed
		c.mu.Unlock()
		if slices.Contains(got, name) {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no message on %s after 10 s; received %q", name, got)
		}
	}
}

// startBroker starts an embedded broker for cfg, on a free loopback port
// unless cfg names one, and stops it when the test ends.
func startBroker(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	return bustest.StartBroker(t, cfg)
}
