// Package linktest helps test code that talks MQTT the way the agent's link
// does, as httptest helps test HTTP: it signs channel and desired states as
// the server would, collects what a broker delivers, and puts a TCP proxy
// between a client and its broker so a test can cut the connection, lose
// the broker's answers, refuse new connections, or swap the broker behind
// the same address.
package linktest

import (
	"bytes"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Sign returns the MQTT payload that carries m, a valid *ChannelState or
// *DesiredState, in a SignedMessage signed by each of signers over
// SigningBytes, as the server publishes it.
func Sign(t testing.TB, m proto.Message, signers ...*keys.Signer) []byte {
	t.Helper()
	env, err := gitfleetv1.NewSignedMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		sig, err := s.SignMessage(bytes.NewReader(env.SigningBytes()))
		if err != nil {
			t.Fatalf("linktest: sign with %s: %v", s.ID, err)
		}
		env.Signatures = append(env.Signatures, &gitfleetv1.Signature{KeyId: s.ID, Sig: sig})
	}
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A Message is one message a Collector received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// A Collector is an MQTT client that subscribes to a filter and keeps what
// arrives. It reconnects and subscribes again by itself after a loss.
type Collector struct {
	t        testing.TB
	client   mqtt.Client
	mu       sync.Mutex
	msgs     []Message
	subs     int // successful subscriptions so far
	changed  chan struct{}
	clientID string
}

// Collect connects to the broker at addr ("127.0.0.1:PORT") as user,
// subscribes to filter at QoS 1 and returns once the broker granted the
// subscription. clientID must be unique in the run (testenv.ID).
func Collect(t testing.TB, addr, user, password, clientID, filter string) *Collector {
	t.Helper()
	c := &Collector{t: t, changed: make(chan struct{}), clientID: clientID}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetOrderMatters(true)
	opts.SetOnConnectHandler(func(cl mqtt.Client) {
		// Subscribing from the handler would block paho's connect path on
		// the SUBACK, so wait for it on a goroutine of our own.
		tok := cl.Subscribe(filter, 1, c.receive)
		go func() {
			if tok.Wait(); tok.Error() == nil {
				c.update(func() { c.subs++ })
			}
		}()
	})
	c.client = mqtt.NewClient(opts)
	if tok := c.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("linktest: connect the collector to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.client.Disconnect(0) })
	c.WaitSubscribed(1)
	return c
}

func (c *Collector) receive(_ mqtt.Client, m mqtt.Message) {
	c.update(func() {
		c.msgs = append(c.msgs, Message{Topic: m.Topic(), Payload: slices.Clone(m.Payload()), Retained: m.Retained()})
	})
}

// update changes c under its lock and wakes the waiters.
func (c *Collector) update(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn()
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitSubscribed waits until the collector has subscribed n times in all
// (once per connection), failing the test after 10 s.
func (c *Collector) WaitSubscribed(n int) {
	c.t.Helper()
	c.Wait(10*time.Second, func([]Message) bool { return c.subs >= n })
}

// Wait waits until cond, called with every message so far, holds, and
// returns those messages; it fails the test after timeout.
func (c *Collector) Wait(timeout time.Duration, cond func([]Message) bool) []Message {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		msgs, ok, changed := slices.Clone(c.msgs), cond(c.msgs), c.changed
		c.mu.Unlock()
		if ok {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("linktest: collector %s: condition not met after %v; %d messages received", c.clientID, timeout, len(msgs))
			return nil
		}
	}
}

// Messages returns the messages received so far.
func (c *Collector) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// Decode decodes the payload of each of msgs with decode, such as
// gitfleetv1.DecodeDeviceEvent, failing the test on the first that does not
// decode.
func Decode[M any](t testing.TB, msgs []Message, decode func([]byte) (M, error)) []M {
	t.Helper()
	out := make([]M, 0, len(msgs))
	for _, m := range msgs {
		v, err := decode(m.Payload)
		if err != nil {
			t.Fatalf("linktest: message on %s: %v", m.Topic, err)
		}
		out = append(out, v)
	}
	return out
}

// Verifier returns the timestamp role's policy of tr's root: what the agent
// checks channel and desired states with.
func Verifier(t testing.TB, tr *bundletest.Trust) *trust.Verifier {
	t.Helper()
	root, err := trust.LoadRoot(tr.RootJSON)
	if err != nil {
		t.Fatal(err)
	}
	v, err := root.Verifier(trust.RoleTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A Client is an MQTT client that publishes as a test says, such as the
// server publishing signed states.
type Client struct {
	t      testing.TB
	client mqtt.Client
}

// Connect connects a Client to the broker at addr as user. clientID must be
// unique in the run (testenv.ID).
func Connect(t testing.TB, addr, user, password, clientID string) *Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).SetCleanSession(true)
	c := &Client{t: t, client: mqtt.NewClient(opts)}
	if tok := c.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("linktest: connect to %s as %s: %v", addr, user, tok.Error())
	}
	t.Cleanup(func() { c.client.Disconnect(0) })
	return c
}

// Publish publishes payload on topic at QoS 1 and waits for the broker's
// acknowledgment.
func (c *Client) Publish(topic string, payload []byte, retained bool) {
	c.t.Helper()
	if tok := c.client.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("linktest: publish to %s: %v", topic, tok.Error())
	}
}

// A Proxy forwards TCP connections from its own loopback address to a
// backend. Closing a forwarded connection without a word is what a network
// failure or an agent killed mid-flight looks like to both ends.
type Proxy struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	backend string
	blocked bool
	conns   map[net.Conn]bool // forwarded connections, both ends: true for a backend's
	stalled map[net.Conn]bool // backend ends whose bytes are dropped
}

// NewProxy starts a proxy to backend ("127.0.0.1:PORT"); it stops when the
// test ends.
func NewProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, backend: backend, conns: map[net.Conn]bool{}, stalled: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr returns the proxy's address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBackend makes new connections go to backend; established ones stay.
func (p *Proxy) SetBackend(backend string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = backend
}

// Block makes the proxy close new connections at once, like a broker that
// is down; Unblock lets them through again.
func (p *Proxy) Block()   { p.setBlocked(true) }
func (p *Proxy) Unblock() { p.setBlocked(false) }

func (p *Proxy) setBlocked(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = b
}

// Conns returns how many connections the proxy is forwarding.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Stall makes the connections the proxy forwards now drop what the backend
// sends, while still passing on what the client sends: the broker receives
// the client's messages, but its acknowledgments and ping answers are lost,
// until the client gives up on the connection. New connections are not
// stalled.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, backend := range p.conns {
		if backend {
			p.stalled[c] = true
		}
	}
}

// Cut closes every forwarded connection abruptly, on both sides, and
// returns how many connections it cut.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not an orderly close
		}
		c.Close()
	}
	n := len(p.conns) / 2
	clear(p.conns)
	clear(p.stalled)
	return n
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		backend, blocked := p.backend, p.blocked
		p.mu.Unlock()
		if blocked {
			down.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", backend, 5*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns[down], p.conns[up] = false, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, down)
		go p.pipe(down, up)
	}
}

// pipe copies from src to dst until either ends, then closes both. It
// drops what it reads while src is stalled.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		drop := p.stalled[src]
		p.mu.Unlock()
		if n > 0 && !drop {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	for _, c := range []net.Conn{dst, src} {
		delete(p.conns, c)
		delete(p.stalled, c)
	}
	p.mu.Unlock()
}
