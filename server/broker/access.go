package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gitfleet/gitfleet/proto/topic"
)

// Listener ids of the broker: clients sign in with a password on the first
// two and with a client certificate on the last.
const (
	passwordListener    = "password"
	passwordTLSListener = "password-tls"
	tlsListener         = "mtls"
)

// access is the broker's authentication and ACL hook. It gives every client
// an identity at CONNECT — the account it proved with its password, or the
// common name of its client certificate on the mutual-TLS listener — and
// writes that identity into the client's username, as Mosquitto's
// use_identity_as_username does, so the ACL reads one field whatever the
// listener. The server's account may do anything; any other identity is a
// device, held to topic.CheckDevicePublish and topic.CheckDeviceSubscribe in
// every fleet the broker serves.
type access struct {
	mqtt.HookBase
	passwords  *passwordFile // nil: no password accounts
	serverUser string        // "" : no server account besides the inline client
	fleets     []string
	log        *slog.Logger
	clients    *mqtt.Clients // the broker's, for OnSessionEstablish
}

func (a *access) ID() string { return "gitfleet-access" }

func (a *access) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablish || b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnSessionEstablish ends a connection under the same client id whose
// session ends with it, and waits, for at most a second, until it is gone
// from the broker, before the broker lets the new connection take its place.
// mochi-mqtt 2.7.9 removes such a client by its id some moments after it
// closed: had the new connection taken its place in between, it would be
// the one removed, and it would receive nothing. For an ending session,
// ending it first and taking over differ in nothing but the reason code an
// MQTT 5 client reads in its DISCONNECT.
func (a *access) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	old, ok := a.clients.Get(cl.ID)
	if !ok || old == cl || !ending(old) {
		return
	}
	old.Stop(packets.ErrSessionTakenOver)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cur, ok := a.clients.Get(cl.ID); !ok || cur != old {
			return
		}
	}
}

// ending reports whether cl's session ends when its connection does.
func ending(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}

// OnConnectAuthenticate decides whether a client may connect, and sets its
// username to its identity if it may.
func (a *access) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	id, err := a.authenticate(cl, pk)
	if err != nil {
		a.log.Warn("broker: connection refused", "client", cl.ID, "remote", cl.Net.Remote, "err", err)
		return false
	}
	cl.Properties.Username = []byte(id)
	return true
}

// authenticate returns the identity of the client connecting with pk.
func (a *access) authenticate(cl *mqtt.Client, pk packets.Packet) (string, error) {
	var id string
	switch cl.Net.Listener {
	case passwordListener, passwordTLSListener:
		user := string(pk.Connect.Username)
		if a.passwords == nil {
			return "", errors.New("no password accounts are configured")
		}
		h, ok, err := a.passwords.account(user)
		if err != nil {
			a.log.Error("broker: password file changed but cannot be read; the accounts stay as they were", "err", err)
		}
		// A missing account costs a hash too, so timing does not tell
		// which accounts exist.
		if !ok {
			h = decoy
		}
		if !h.verify(pk.Connect.Password) || !ok {
			return "", fmt.Errorf("account %q: wrong name or password", user)
		}
		id = user
	case tlsListener:
		tc, ok := cl.Net.Conn.(*tls.Conn)
		if !ok {
			return "", errors.New("the TLS listener gave a connection without TLS")
		}
		certs := tc.ConnectionState().PeerCertificates
		if len(certs) == 0 {
			return "", errors.New("no client certificate")
		}
		id = certs[0].Subject.CommonName
		if err := topic.CheckID(id); err != nil {
			return "", fmt.Errorf("client certificate common name: %w", err)
		}
		if id == a.serverUser {
			// The server's account signs in with its password only, so a
			// device certificate misissued with its name is not the server.
			return "", fmt.Errorf("client certificate names the server's account %q", id)
		}
	default:
		return "", fmt.Errorf("unknown listener %q", cl.Net.Listener)
	}
	if cl.ID == mqtt.InlineClientId {
		return "", fmt.Errorf("client id %q is the embedded server's own", cl.ID)
	}
	if id == a.serverUser {
		return id, nil
	}
	// A device is one session: with its own id as client id, no device can
	// take over another's session, which the same client id would do.
	if cl.ID != id {
		return "", fmt.Errorf("device %s: client id %q is not the device id", id, cl.ID)
	}
	if pk.Connect.WillFlag && !a.devicePublish(id, pk.Connect.WillTopic) {
		return "", fmt.Errorf("device %s: last will on %s, where it may not publish", id, pk.Connect.WillTopic)
	}
	return id, nil
}

// OnACLCheck decides whether a client may publish to a topic (write) or
// subscribe to a filter or receive a message on a topic (!write).
func (a *access) OnACLCheck(cl *mqtt.Client, name string, write bool) bool {
	id := string(cl.Properties.Username)
	if a.serverUser != "" && id == a.serverUser {
		return true
	}
	if write {
		return a.devicePublish(id, name)
	}
	return a.deviceSubscribe(id, name)
}

// devicePublish reports whether device id may publish to the topic called
// name.
func (a *access) devicePublish(id, name string) bool {
	f := a.fleetOf(name)
	return f != "" && topic.CheckDevicePublish(f, id, name) == nil
}

// deviceSubscribe reports whether device id may subscribe to filter, or
// receive a message on the topic called filter.
func (a *access) deviceSubscribe(id, filter string) bool {
	f := a.fleetOf(filter)
	return f != "" && topic.CheckDeviceSubscribe(f, id, filter) == nil
}

// fleetOf returns the fleet level of name if it is one of the broker's
// fleets, or "".
func (a *access) fleetOf(name string) string {
	rest, ok := strings.CutPrefix(name, topic.Prefix)
	if !ok {
		return ""
	}
	f, _, _ := strings.Cut(rest, "/")
	if !slices.Contains(a.fleets, f) {
		return ""
	}
	return f
}

// decoy is what an unknown account's password is checked against.
var decoy = func() hash {
	h, err := parsePBKDF2("$7$101$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==")
	if err != nil {
		panic(err)
	}
	return h
}()
