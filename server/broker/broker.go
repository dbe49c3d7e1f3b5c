package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/gitfleet/gitfleet/internal/tlsfiles"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// DefaultAddr is where the embedded broker listens when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:1883"

// maxPacket bounds one MQTT packet: the largest gitfleet payload and room
// for its topic and headers.
const maxPacket = gitfleetv1.MaxMessageSize + 4<<10

// Config says where the embedded broker listens, whom it lets in and what
// it keeps.
type Config struct {
	// Addr is the address of the password listener; empty means
	// DefaultAddr. Clients there sign in with a name and password from
	// PasswordFile.
	Addr string

	// TLSAddr, if set, is the address of a TLS listener with the server
	// certificate in CertFile and its key in KeyFile (PEM). With
	// ClientCAFile set it is mutual TLS: it asks for a client certificate
	// signed by a CA of that file and takes the certificate's common name
	// as the client's identity, whatever username it sends. Without it,
	// clients there sign in with a password as on Addr.
	TLSAddr, CertFile, KeyFile, ClientCAFile string

	// PasswordFile holds the password accounts, one "NAME:HASH" line each,
	// as mosquitto_passwd writes them (see the package documentation).
	// It is read again when it changes. Empty means no password accounts.
	PasswordFile string

	// ServerUser is the account of the gitfleet server, which may publish
	// and subscribe anywhere; every other account is a device. Empty means
	// none: the server in the same process uses the broker's inline client.
	ServerUser string

	// Fleets are the fleets whose devices the broker serves: a device may
	// publish and subscribe under gitfleet/v1/<fleet>/ for these alone.
	Fleets []string

	// DataDir, if set, is where the broker keeps the retained channel and
	// desired states across restarts (RetainedFile).
	DataDir string
}

// A Broker is gitfleet's embedded MQTT broker (mochi-mqtt), for a server on
// one machine. Its access rules are those of package topic, which
// RenderMosquittoACL writes for an external broker.
type Broker struct {
	srv     *mqtt.Server
	addr    string
	tlsAddr string
	log     *slog.Logger
}

// New returns a broker for cfg that listens on its addresses already, so
// that Addr and TLSAddr are known, and holds the retained states kept in
// Config.DataDir; Run serves them. log receives the broker's own records
// too.
func New(cfg Config, log *slog.Logger) (*Broker, error) {
	if len(cfg.Fleets) == 0 {
		return nil, errors.New("embedded broker: Config.Fleets is empty: name the fleets whose devices it serves")
	}
	for _, f := range cfg.Fleets {
		if err := topic.CheckID(f); err != nil {
			return nil, fmt.Errorf("embedded broker: Config.Fleets: %w", err)
		}
	}
	if cfg.ServerUser != "" {
		if err := topic.CheckID(cfg.ServerUser); err != nil {
			return nil, fmt.Errorf("embedded broker: Config.ServerUser: %w", err)
		}
	}
	acc := &access{serverUser: cfg.ServerUser, fleets: cfg.Fleets, log: log}
	if cfg.PasswordFile != "" {
		pf, err := loadPasswordFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: Config.PasswordFile: %w", err)
		}
		acc.passwords = pf
	}

	caps := mqtt.NewDefaultServerCapabilities()
	// mochi drops retained messages older than this by default (a day);
	// channel and desired states stay until the server replaces them.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumPacketSize = maxPacket
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: log})
	acc.clients = srv.Clients
	b := &Broker{srv: srv, log: log}
	for _, h := range []mqtt.Hook{acc, &unretained{}} {
		if err := srv.AddHook(h, nil); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
	}
	if cfg.DataDir != "" {
		rs, err := openRetainedStore(cfg.DataDir, log)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		if err := srv.AddHook(rs, nil); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		// Back now rather than when Run starts serving: the server in the
		// same process subscribes through the inline client before that,
		// and a subscription gets only the retained messages already there.
		for _, pk := range rs.packets() {
			srv.Topics.RetainMessage(pk)
		}
	}

	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	l := listeners.NewTCP(listeners.Config{ID: passwordListener, Address: addr})
	if err := srv.AddListener(l); err != nil {
		return nil, fmt.Errorf("embedded broker: listen on %s: %w", addr, err)
	}
	b.addr = l.Address()
	if cfg.TLSAddr != "" {
		tc, err := cfg.tlsConfig()
		if err != nil {
			b.closeListeners()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		id := passwordTLSListener
		if cfg.ClientCAFile != "" {
			id = tlsListener
		}
		tl := listeners.NewTCP(listeners.Config{ID: id, Address: cfg.TLSAddr, TLSConfig: tc})
		if err := srv.AddListener(tl); err != nil {
			b.closeListeners()
			return nil, fmt.Errorf("embedded broker: listen on %s: %w", cfg.TLSAddr, err)
		}
		b.tlsAddr = tl.Address()
	}
	return b, nil
}

// tlsConfig builds the TLS listener's configuration.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("Config.TLSAddr is set: set CertFile and KeyFile too")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("Config.CertFile and KeyFile: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pool, err := tlsfiles.CertPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("Config.ClientCAFile %s: %w", c.ClientCAFile, err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// closeListeners closes the listeners of a broker that never served.
func (b *Broker) closeListeners() {
	b.srv.Listeners.CloseAll(func(string) {})
}

// Addr returns the address of the password listener, "HOST:PORT".
func (b *Broker) Addr() string { return b.addr }

// TLSAddr returns the address of the TLS listener, or "" if there is none.
func (b *Broker) TLSAddr() string { return b.tlsAddr }

// Server returns the mochi broker, whose inline client (Publish, Subscribe)
// is how the server in the same process talks MQTT: fleetmq.NewInline.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Run serves clients until ctx ends, then disconnects them, closes the
// listeners and returns nil.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		b.srv.Close()
		return fmt.Errorf("embedded broker: %w", err)
	}
	b.log.Info("broker: serving", "addr", b.addr, "tls_addr", b.tlsAddr)
	<-ctx.Done()
	b.srv.Close()
	return nil
}
