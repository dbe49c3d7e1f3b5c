package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus/bustest"
)

// pki is a throwaway certificate authority, a broker certificate for
// 127.0.0.1 it signed, and client certificates on demand.
type pki struct {
	dir               string
	ca                *x509.Certificate
	caKey             *ecdsa.PrivateKey
	caFile            string
	certFile, keyFile string // the broker's
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitfleet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caFile = p.write(t, "ca.crt", "CERTIFICATE", der)
	p.certFile, p.keyFile = p.issue(t, "broker", "127.0.0.1", x509.ExtKeyUsageServerAuth)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate for cn, signed by the CA, and its key.
func (p *pki) issue(t *testing.T, name, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".crt", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kder)
}

// clientTLS returns a client configuration that trusts the CA and presents
// a certificate for cn.
func (p *pki) clientTLS(t *testing.T, cn string) *tls.Config {
	t.Helper()
	certFile, keyFile := p.issue(t, "client-"+strings.ReplaceAll(cn, "/", "_"), cn, x509.ExtKeyUsageClientAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
