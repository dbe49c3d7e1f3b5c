package testenv_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

// timeout bounds every wait for the broker.
const timeout = 10 * time.Second

func TestMQTTRoundTrip(t *testing.T) {
	t.Parallel()
	b := testenv.MQTT(t)
	fleet := "gitfleet/v1/" + testenv.ID(t)
	device := b.Devices[0]
	server := login{b.User, b.Password}
	dev := login{device, b.DevicePassword}
	tests := []struct {
		name                  string
		publisher, subscriber login
		topic                 string
	}{
		{"server to server", server, server, fleet + "/anything/at/all"},
		{"device to server", dev, server, fleet + "/devices/" + device + "/events"},
		{"server to device", server, dev, fleet + "/devices/" + device + "/desired"},
		{"channel to device", server, dev, fleet + "/channels/stable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub := connect(t, b.Addr, tt.subscriber.user, tt.subscriber.password)
			msgs := subscribe(t, sub, tt.topic)
			pub := connect(t, b.Addr, tt.publisher.user, tt.publisher.password)
			payload := "hello from " + tt.name
			publish(t, pub, tt.topic, 1, payload)

			m := next(t, msgs)
			if m.Topic() != tt.topic || string(m.Payload()) != payload || m.Qos() != 1 {
				t.Errorf("got %q on %s at QoS %d, want %q on %s at QoS 1",
					m.Payload(), m.Topic(), m.Qos(), payload, tt.topic)
			}
		})
	}
}

type login struct{ user, password string }

// TestMQTTConfinesDevices checks the ACL: a device neither publishes nor reads under another device's
// topics, nor writes its own desired state. Mosquitto drops what a device may not publish or read without telling it, so each case
// sends a forbidden message, then an allowed one, and checks that the allowed one arrives first: the
// broker handles a client's packets, and delivers to a subscriber, in order.
func TestMQTTConfinesDevices(t *testing.T) {
	t.Parallel()
	b := testenv.MQTT(t)
	fleet := "gitfleet/v1/" + testenv.ID(t)
	me, other := b.Devices[0], b.Devices[1]
	topic := func(device, leaf string) string { return fleet + "/devices/" + device + "/" + leaf }

	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("publish at QoS %d", qos), func(t *testing.T) {
			t.Parallel()
			server := connect(t, b.Addr, b.User, b.Password)
			msgs := subscribe(t, server, topic("+", "status"))
			device := connect(t, b.Addr, me, b.DevicePassword)
			publish(t, device, topic(other, "status"), qos, "forged")
			publish(t, device, topic(me, "status"), 1, "mine")

			if m := next(t, msgs); m.Topic() != topic(me, "status") {
				t.Errorf("the server got %q on %s first: %s published as %s", m.Payload(), m.Topic(), me, other)
			}
		})
	}
	// Nor does it write its own desired state: only the server commands it.
	t.Run("publish its own desired state", func(t *testing.T) {
		t.Parallel()
		server := connect(t, b.Addr, b.User, b.Password)
		msgs := subscribe(t, server, topic(me, "desired"), topic(me, "events"))
		device := connect(t, b.Addr, me, b.DevicePassword)
		publish(t, device, topic(me, "desired"), 1, "forged pin")
		publish(t, device, topic(me, "events"), 1, "mine")

		if m := next(t, msgs); m.Topic() != topic(me, "events") {
			t.Errorf("the server got %q on %s first: %s wrote its own desired state", m.Payload(), m.Topic(), me)
		}
	})
	t.Run("subscribe", func(t *testing.T) {
		t.Parallel()
		device := connect(t, b.Addr, me, b.DevicePassword)
		msgs := subscribe(t, device, topic(other, "desired"), topic(me, "desired"))
		server := connect(t, b.Addr, b.User, b.Password)
		publish(t, server, topic(other, "desired"), 1, "for "+other)
		publish(t, server, topic(me, "desired"), 1, "for "+me)

		if m := next(t, msgs); m.Topic() != topic(me, "desired") {
			t.Errorf("%s got %q on %s first: it read %s's topic", me, m.Payload(), m.Topic(), other)
		}
	})
}

func TestMQTTRefusesBadLogins(t *testing.T) {
	t.Parallel()
	b := testenv.MQTT(t)
	tests := []struct {
		name, user, password string
	}{
		{"wrong password", b.User, "not-" + b.Password},
		{"unknown account", "no-such-account", b.Password},
		{"device with the server's password", b.Devices[0], b.Password},
		{"anonymous", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr).
				SetUsername(tt.user).SetPassword(tt.password)
			_, err := dial(t, opts)
			if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
				t.Errorf("connect: got error %v, want %v", err, packets.ErrorRefusedNotAuthorised)
			}
		})
	}
}

// TestMQTTMutualTLS checks the TLS listener: it wants a certificate from the test CA and takes its
// common name as the account, so the ACL confines a device connected with it like any other.
func TestMQTTMutualTLS(t *testing.T) {
	t.Parallel()
	b := testenv.MQTT(t)
	fleet := "gitfleet/v1/" + testenv.ID(t)
	me, other := b.Devices[1], b.Devices[0]
	topic := func(device string) string { return fleet + "/devices/" + device + "/status" }

	t.Run("certificate of the test CA", func(t *testing.T) {
		t.Parallel()
		server := connect(t, b.Addr, b.User, b.Password)
		msgs := subscribe(t, server, topic("+"))
		device, err := dialTLS(t, b.TLSAddr, b.TLSConfig(t, me))
		if err != nil {
			t.Fatalf("connect as %s: %v", me, err)
		}
		publish(t, device, topic(other), 1, "forged")
		publish(t, device, topic(me), 1, "mine")

		if m := next(t, msgs); m.Topic() != topic(me) {
			t.Errorf("the server got %q on %s first: %s, connected with its certificate, published as %s",
				m.Payload(), m.Topic(), me, other)
		}
	})
	t.Run("certificate files of the test CA", func(t *testing.T) {
		t.Parallel()
		certFile, keyFile := b.ClientCert(t, me)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		config := b.TLSConfig(t, me)
		config.Certificates = []tls.Certificate{cert}
		if _, err := dialTLS(t, b.TLSAddr, config); err != nil {
			t.Errorf("connect with %s and %s: %v", certFile, keyFile, err)
		}
	})

	refused := []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no certificate", nil},
		{"certificate of another CA", []tls.Certificate{selfSigned(t, me)}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			config := b.TLSConfig(t, me)
			config.Certificates = tt.certs
			_, err := dialTLS(t, b.TLSAddr, config)
			if err == nil {
				t.Fatalf("connected, want refused")
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestMosquitto(t *testing.T) {
	t.Parallel()
	var addr string
	t.Run("own broker", func(t *testing.T) {
		addr = testenv.Mosquitto(t, "allow_anonymous true")
		c := connect(t, addr, "", "")
		msgs := subscribe(t, c, "private/#")
		publish(t, c, "private/hello", 1, "hi")
		if m := next(t, msgs); string(m.Payload()) != "hi" {
			t.Errorf("got %q, want %q", m.Payload(), "hi")
		}
	})
	if c, err := dial(t, mqtt.NewClientOptions().AddBroker("tcp://"+addr)); err == nil {
		c.Disconnect(0)
		t.Errorf("the broker at %s still runs after its test ended", addr)
	}
}

// dial connects a client with opts and disconnects it when the test ends.
func dial(t *testing.T, opts *mqtt.ClientOptions) (mqtt.Client, error) {
	opts.SetClientID(testenv.ID(t)).SetAutoReconnect(false).SetConnectTimeout(timeout)
	c := mqtt.NewClient(opts)
	if err := await(c.Connect()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c, nil
}

// connect connects to the password listener at addr, failing the test if it cannot.
func connect(t *testing.T, addr, user, password string) mqtt.Client {
	t.Helper()
	c, err := dial(t, mqtt.NewClientOptions().AddBroker("tcp://"+addr).SetUsername(user).SetPassword(password))
	if err != nil {
		t.Fatalf("connect to %s as %q: %v", addr, user, err)
	}
	return c
}

func dialTLS(t *testing.T, addr string, config *tls.Config) (mqtt.Client, error) {
	return dial(t, mqtt.NewClientOptions().AddBroker("tls://"+addr).SetTLSConfig(config))
}

// subscribe subscribes c to filters at QoS 1 and returns the messages it gets.
func subscribe(t *testing.T, c mqtt.Client, filters ...string) <-chan mqtt.Message {
	t.Helper()
	msgs := make(chan mqtt.Message, 16)
	for _, filter := range filters {
		if err := await(c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { msgs <- m })); err != nil {
			t.Fatalf("subscribe to %s: %v", filter, err)
		}
	}
	return msgs
}

func publish(t *testing.T, c mqtt.Client, topic string, qos byte, payload string) {
	t.Helper()
	if err := await(c.Publish(topic, qos, false, payload)); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

// next returns the next message, failing the test if none comes in time.
func next(t *testing.T, msgs <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
		return nil
	}
}

func await(tok mqtt.Token) error {
	if !tok.WaitTimeout(timeout) {
		return fmt.Errorf("no answer within %v", timeout)
	}
	return tok.Error()
}

// selfSigned returns a client certificate for commonName that no CA signed.
func selfSigned(t *testing.T, commonName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
