// Package bustest gives tests of code that talks MQTT through package bus a
// broker and the server's clients of it: the run's real Mosquitto with paho
// clients, and an embedded broker of package broker with its inline client.
// Run a test against both with Both.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus"
)

// An Env is a broker for one test, and how the server and devices reach it.
type Env struct {
	// Name is "mosquitto" or "embedded".
	Name string
	// Fleet is a fleet name unique to the test and the run.
	Fleet string
	// Addr is the broker's password listener, "127.0.0.1:PORT".
	Addr string
	// Devices are device accounts, at least two, with DevicePassword.
	Devices        []string
	DevicePassword string
	// Broker is the embedded broker, or nil for Mosquitto; PasswordFile
	// holds its device accounts, for a broker started again.
	Broker       *broker.Broker
	PasswordFile string

	mqtt testenv.Broker
}

// Mosquitto returns an Env on the run's Mosquitto (testenv.MQTT).
func Mosquitto(t testing.TB) Env {
	t.Helper()
	b := testenv.MQTT(t)
	return Env{Name: "mosquitto", Fleet: testenv.ID(t), Addr: b.Addr, Devices: b.Devices, DevicePassword: b.DevicePassword, mqtt: b}
}

// Embedded returns an Env on an embedded broker of the test's own, serving
// its fleet, with device accounts device-1 to device-3. It stops when the
// test ends.
func Embedded(t testing.TB) Env {
	t.Helper()
	e := Env{Name: "embedded", Fleet: testenv.ID(t), Devices: []string{"device-1", "device-2", "device-3"}, DevicePassword: secret(t)}
	file := filepath.Join(t.TempDir(), "passwd")
	var lines []byte
	for _, d := range e.Devices {
		h, err := broker.HashPassword(e.DevicePassword)
		if err != nil {
			t.Fatal(err)
		}
		lines = fmt.Appendf(lines, "%s:%s\n", d, h)
	}
	if err := os.WriteFile(file, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	e.PasswordFile = file
	e.Broker = StartBroker(t, broker.Config{Addr: "127.0.0.1:0", PasswordFile: file, Fleets: []string{e.Fleet}})
	e.Addr = e.Broker.Addr()
	return e
}

// StartBroker starts an embedded broker for cfg and stops it when the test
// ends.
func StartBroker(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return b
}

func secret(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Both runs fn against each kind of broker, as subtests named after them.
func Both(t *testing.T, fn func(t *testing.T, e Env)) {
	t.Run("mosquitto", func(t *testing.T) { fn(t, Mosquitto(t)) })
	t.Run("embedded", func(t *testing.T) { fn(t, Embedded(t)) })
}

// Client returns a server client of the broker, closed when the test ends:
// a paho client with the server's account and a session named after the
// test and replica on Mosquitto, the inline client on the embedded broker.
func (e Env) Client(t testing.TB, replica string) bus.Client {
	t.Helper()
	if e.Broker != nil {
		c := bus.NewInline(e.Broker.Server())
		t.Cleanup(c.Close)
		return c
	}
	return e.Paho(t, e.Fleet+"-"+replica)
}

// Paho returns a paho client of Mosquitto with the server's account and
// clientID, closed when the test ends.
func (e Env) Paho(t testing.TB, clientID string) *bus.Paho {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := bus.DialPaho(ctx, e.PahoConfig(clientID), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// PahoConfig returns the configuration of a paho client of Mosquitto with
// the server's account and clientID.
func (e Env) PahoConfig(clientID string) bus.PahoConfig {
	return bus.PahoConfig{Broker: "tcp://" + e.mqtt.Addr, ClientID: clientID, Username: e.mqtt.User, Password: e.mqtt.Password}
}

// DeviceClientID returns the MQTT client id for device: its own id on the
// embedded broker, which wants nothing else, and a name unique to the run on
// Mosquitto, which every test of the run shares.
func (e Env) DeviceClientID(t testing.TB, device string) string {
	if e.Broker != nil {
		return device
	}
	return testenv.ID(t) + "-" + device
}

// testTimeout bounds what a helper waits for.
const testTimeout = 10 * time.Second
