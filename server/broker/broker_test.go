package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/broker"
)

func TestConnect(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	b := startBroker(t, broker.Config{
		PasswordFile: passwordFile(t), ServerUser: serverUser, Fleets: []string{fleet},
		TLSAddr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: p.CAFile,
	})
	mqttTopic := topicOf(t)
	ownStatus := mqttTopic(topic.Status(fleet, "device-1"))
	otherStatus := mqttTopic(topic.Status(fleet, "device-2"))
	pw := func(user string) login { return login{user: user, password: accounts[user]} }
	cert := func(pk *pki, cn string) login {
		c := pk.ClientTLS(t, cn)
		c.RootCAs = p.ClientTLS(t, "device-0").RootCAs // the broker's CA, whoever signed the client
		return login{user: "device-2", tls: c}
	}
	for _, tc := range []struct {
		name     string
		login    login
		clientID string
		will     string // a topic for the last will, if not empty
		ok       bool
	}{
		{"server", pw(serverUser), "server-1", "", true},
		{"device", pw("device-1"), "device-1", "", true},
		{"device with its last will", pw("device-1"), "device-1", ownStatus, true},
		{"wrong password", login{user: "device-1", password: "secret-2"}, "device-1", "", false},
		{"unknown account", login{user: "device-9", password: "secret-1"}, "device-9", "", false},
		{"no account", login{}, "device-1", "", false},
		{"device under another client id", pw("device-1"), "device-2", "", false},
		{"device with another's last will", pw("device-1"), "device-1", otherStatus, false},
		{"server as the inline client", pw(serverUser), "inline", "", false},
		{"certificate", cert(p, "device-1"), "device-1", "", true},
		{"certificate under the username's client id", cert(p, "device-1"), "device-2", "", false},
		{"certificate naming the server", cert(p, serverUser), serverUser, "", false},
		{"certificate naming no device", cert(p, "a/b"), "a/b", "", false},
		{"certificate of another CA", cert(other, "device-1"), "device-1", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := b.Addr()
			if tc.login.tls != nil {
				addr = b.TLSAddr()
			}
			var will func(*mqtt.ClientOptions)
			if tc.will != "" {
				will = func(o *mqtt.ClientOptions) { o.SetBinaryWill(tc.will, []byte("offline"), 1, true) }
			}
			_, err := dial(t, addr, tc.login, tc.clientID, will)
			if got := err == nil; got != tc.ok {
				t.Errorf("connected = %t (err %v), want %t", got, err, tc.ok)
			}
		})
	}
}

// TestWill checks that the last will of a device that vanishes arrives.
func TestWill(t *testing.T) {
	b := startBroker(t, broker.Config{PasswordFile: passwordFile(t), ServerUser: serverUser, Fleets: []string{fleet}})
	own := topicOf(t)(topic.Status(fleet, "device-1"))
	sub := mustDial(t, b.Addr(), login{user: serverUser, password: accounts[serverUser]}, "server")
	sub.subscribe(t, "gitfleet/#")
	proxy := linktest.NewProxy(t, b.Addr())
	opts := mqtt.NewClientOptions().AddBroker("tcp://"+proxy.Addr()).SetClientID("device-1").
		SetUsername("device-1").SetPassword(accounts["device-1"]).SetProtocolVersion(4).
		SetAutoReconnect(false).SetBinaryWill(own, []byte("offline"), 1, true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	// The device's connection dies without a DISCONNECT.
	proxy.Cut()
	sub.wait(t, own)
}

func TestPasswordFileIsReadAgain(t *testing.T) {
	file := passwordFile(t)
	b := startBroker(t, broker.Config{PasswordFile: file, ServerUser: serverUser, Fleets: []string{fleet}})
	if _, err := dial(t, b.Addr(), login{user: "device-4", password: "secret-4"}, "device-4", nil); err == nil {
		t.Fatal("device-4 connected before it had an account")
	}
	h, err := broker.HashPassword("secret-4")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "device-4:%s\n", h)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := dial(t, b.Addr(), login{user: "device-4", password: "secret-4"}, "device-4", nil)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device-4 cannot connect 10 s after its account was added: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRetainedStatesSurviveRestart restarts the broker on its data
// directory: the channel and desired states are retained again, a device's
// status is not.
func TestRetainedStatesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{Addr: "127.0.0.1:0", PasswordFile: passwordFile(t), ServerUser: serverUser, Fleets: []string{fleet}, DataDir: dir}
	mqttTopic := topicOf(t)
	channel := mqttTopic(topic.Channel(fleet, "stable"))
	cleared := mqttTopic(topic.Channel(fleet, "beta"))
	desired := mqttTopic(topic.Desired(fleet, "device-1"))
	status := mqttTopic(topic.Status(fleet, "device-1"))

	ctx, cancel := context.WithCancel(context.Background())
	b1, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b1.Run(ctx) }()
	srv := mustDial(t, b1.Addr(), login{user: serverUser, password: accounts[serverUser]}, "server")
	for _, m := range []struct {
		topic, payload string
	}{{channel, "channel"}, {cleared, "beta"}, {cleared, ""}, {desired, "desired"}} {
		if err := srv.publish(t, m.topic, []byte(m.payload), true); err != nil {
			t.Fatal(err)
		}
	}
	dev := mustDial(t, b1.Addr(), login{user: "device-1", password: accounts["device-1"]}, "device-1")
	if err := dev.publish(t, status, []byte("status"), true); err != nil {
		t.Fatal(err)
	}
	srv.c.Disconnect(0)
	dev.c.Disconnect(0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, broker.RetainedFile)); err != nil {
		t.Fatal(err)
	}

	// The server in the same process subscribes before the broker serves.
	b2, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var inline []string
	if err := b2.Server().Subscribe(channel, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		inline = append(inline, string(pk.Payload))
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"channel"}; !slices.Equal(inline, want) {
		t.Errorf("before serving, an inline subscription got %q, want %q", inline, want)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- b2.Run(ctx2) }()
	t.Cleanup(func() {
		cancel2()
		if err := <-done2; err != nil {
			t.Error(err)
		}
	})
	sub := mustDial(t, b2.Addr(), login{user: serverUser, password: accounts[serverUser]}, "server")
	sub.subscribe(t, "gitfleet/#")
	sub.wait(t, channel)
	got := sub.wait(t, desired)
	// The marker comes after every retained message.
	marker := mqttTopic(topic.Channel(fleet, "marker"))
	if err := sub.publish(t, marker, []byte("m"), false); err != nil {
		t.Fatal(err)
	}
	got = sub.wait(t, marker)
	if strings.Contains(strings.Join(got, " "), status) || strings.Contains(strings.Join(got, " "), cleared) {
		t.Errorf("after the restart the broker retained %q; want the channel and desired states only", got)
	}
}

// TestReconnectUnderSameID reconnects a clean session under the same client
// id at once, again and again: each connection must get its messages.
func TestReconnectUnderSameID(t *testing.T) {
	b := startBroker(t, broker.Config{PasswordFile: passwordFile(t), ServerUser: serverUser, Fleets: []string{fleet}})
	for range 100 {
		c := mustDial(t, b.Addr(), login{user: serverUser, password: accounts[serverUser]}, "same")
		c.subscribe(t, "x/#")
		if err := c.publish(t, "x/y", []byte("a"), false); err != nil {
			t.Fatal(err)
		}
		c.wait(t, "x/y")
		c.c.Disconnect(0)
	}
}
