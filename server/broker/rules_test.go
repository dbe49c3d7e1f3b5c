package broker_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/broker"
)

const (
	fleet      = "acme"
	otherFleet = "other"
	serverUser = "gitfleet-server"
)

// accounts are the password accounts of the rules test: the server's and
// three devices'.
var accounts = map[string]string{
	serverUser: "server-secret",
	"device-1": "secret-1",
	"device-2": "secret-2",
	"device-3": "secret-3",
}

// passwordFile writes the accounts to a password file with mosquitto_passwd,
// except device-3, whose line HashPassword makes: one file that both brokers
// must read alike.
func passwordFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	bin := testenv.Tool(t, "mosquitto_passwd")
	for i, user := range []string{serverUser, "device-1", "device-2"} {
		args := []string{"-b", path, user, accounts[user]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	h, err := broker.HashPassword(accounts["device-3"])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "device-3:%s\n", h); err != nil {
		t.Fatal(err)
	}
	return path
}

// topicOf returns a function that passes on the topic name a function of
// package topic built, or fails the test with its error.
func topicOf(t *testing.T) func(string, error) string {
	return func(name string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
}

// target is a broker under test: where its listeners are.
type target struct {
	addr, tlsAddr string
	pki           *pki
}

// A rule is one case of what reaches whom: publisher publishes on topic,
// subscriber subscribes to filter, and the message arrives or not.
type rule struct {
	name       string
	publisher  string // an account, or "tls:NAME" for the certificate of NAME
	topic      string
	subscriber string
	filter     string
	want       bool
}

func rules(t *testing.T) []rule {
	mqttTopic := topicOf(t)
	status := func(f, d string) string { return mqttTopic(topic.Status(f, d)) }
	events := func(f, d string) string { return mqttTopic(topic.Events(f, d)) }
	desired := func(f, d string) string { return mqttTopic(topic.Desired(f, d)) }
	channel := func(f, c string) string { return mqttTopic(topic.Channel(f, c)) }
	statuses := mqttTopic(topic.Filter(topic.KindStatus, fleet))
	return []rule{
		{"device publishes its own status", "device-1", status(fleet, "device-1"), serverUser, "gitfleet/#", true},
		{"device publishes its own events", "device-1", events(fleet, "device-1"), serverUser, "gitfleet/#", true},
		{"device hashed by HashPassword publishes", "device-3", status(fleet, "device-3"), serverUser, "gitfleet/#", true},
		{"device publishes as another device", "device-1", status(fleet, "device-2"), serverUser, "gitfleet/#", false},
		{"device publishes events as another device", "device-1", events(fleet, "device-2"), serverUser, "gitfleet/#", false},
		{"device publishes its own desired state", "device-1", desired(fleet, "device-1"), serverUser, "gitfleet/#", false},
		{"device publishes a channel state", "device-1", channel(fleet, "stable"), serverUser, "gitfleet/#", false},
		{"device publishes in a fleet not served", "device-1", status(otherFleet, "device-1"), serverUser, "gitfleet/#", false},
		{"device publishes outside gitfleet", "device-1", "elsewhere/device-1", serverUser, "#", false},
		{"device reads its channel", serverUser, channel(fleet, "stable"), "device-1", channel(fleet, "stable"), true},
		{"device reads its desired state", serverUser, desired(fleet, "device-1"), "device-1", desired(fleet, "device-1"), true},
		{"device reads another's desired state", serverUser, desired(fleet, "device-2"), "device-1", desired(fleet, "device-2"), false},
		{"device reads others' statuses", "device-2", status(fleet, "device-2"), "device-1", statuses, false},
		{"device reads another fleet's channel", serverUser, channel(otherFleet, "stable"), "device-1", channel(otherFleet, "stable"), false},
		{"certificate device publishes its own status", "tls:device-1", status(fleet, "device-1"), serverUser, "gitfleet/#", true},
		{"certificate device publishes as the username it sends", "tls:device-1", status(fleet, "device-2"), serverUser, "gitfleet/#", false},
	}
}

// checkRules runs every rule against the broker at tg.
func checkRules(t *testing.T, tg target) {
	for i, r := range rules(t) {
		t.Run(r.name, func(t *testing.T) {
			sub := mustDial(t, tg.addr, login{user: r.subscriber, password: accounts[r.subscriber]}, r.subscriber)
			// Every account may read the marker's channel: once the marker
			// has arrived, so would the message before it.
			marker := topicOf(t)(topic.Channel(fleet, fmt.Sprintf("marker-%d", i)))
			sub.subscribe(t, r.filter, marker)

			pubID := r.publisher
			l := login{user: r.publisher, password: accounts[r.publisher]}
			if name, ok := strings.CutPrefix(r.publisher, "tls:"); ok {
				// It sends another device's name as its username.
				pubID, l = name, login{user: "device-2", tls: tg.pki.ClientTLS(t, name)}
			}
			addr := tg.addr
			if l.tls != nil {
				addr = tg.tlsAddr
			}
			if pubID == r.subscriber {
				t.Fatalf("bad case: %s publishes and subscribes", pubID)
			}
			pub := mustDial(t, addr, l, pubID)
			pub.publish(t, r.topic, []byte("payload"), false)

			server := sub
			if r.subscriber != serverUser {
				server = mustDial(t, tg.addr, login{user: serverUser, password: accounts[serverUser]}, "server-marker")
			}
			if err := server.publish(t, marker, []byte("marker"), false); err != nil {
				t.Fatalf("publish the marker: %v", err)
			}
			got := sub.wait(t, marker)
			if r.want {
				got = sub.wait(t, r.topic)
			}
			if arrived := slices.Contains(got, r.topic); arrived != r.want {
				t.Errorf("%s published on %s; %s subscribed to %s: arrived = %t, want %t", r.publisher, r.topic, r.subscriber, r.filter, arrived, r.want)
			}
		})
	}
}

// TestRulesEmbedded checks what reaches whom through the embedded broker,
// on its password and mutual-TLS listeners.
func TestRulesEmbedded(t *testing.T) {
	p := newPKI(t)
	b := startBroker(t, broker.Config{
		PasswordFile: passwordFile(t), ServerUser: serverUser, Fleets: []string{fleet},
		TLSAddr: "127.0.0.1:0", CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: p.CAFile,
	})
	checkRules(t, target{addr: b.Addr(), tlsAddr: b.TLSAddr(), pki: p})
}

// TestRulesMosquitto checks the same through a real Mosquitto that reads
// the ACL RenderMosquittoACL wrote and the same password file, with a
// mutual-TLS listener that takes the certificate's name as the username.
func TestRulesMosquitto(t *testing.T) {
	p := newPKI(t)
	acl, err := broker.RenderMosquittoACL(serverUser, []string{fleet})
	if err != nil {
		t.Fatal(err)
	}
	aclFile := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsAddr := testenv.FreeAddr(t)
	_, tlsPort, err := net.SplitHostPort(tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.Mosquitto(t, fmt.Sprintf(`allow_anonymous false
password_file %s
acl_file %s
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, passwordFile(t), aclFile, tlsPort, p.CAFile, p.certFile, p.keyFile))
	checkRules(t, target{addr: addr, tlsAddr: tlsAddr, pki: p})
}
