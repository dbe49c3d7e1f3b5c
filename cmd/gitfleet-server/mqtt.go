package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/advertise"
	"github.com/gitfleet/gitfleet/server/broker"
	"github.com/gitfleet/gitfleet/server/bus"
	"github.com/gitfleet/gitfleet/server/ingest"
)

// mqttParts are the server's MQTT side, ready to run.
type mqttParts struct {
	addr       string
	client     bus.Client
	advertiser *advertiser
	runs       []func(ctx context.Context) error
	changed    chan struct{} // a device reported something: step rollouts soon
	ingest     *ingest.Ingest
}

// openMQTT starts the embedded broker, or connects to the external one, and
// makes the advertiser and the ingest over it.
func (s *server) openMQTT(ctx context.Context) (*mqttParts, error) {
	mq := &mqttParts{changed: make(chan struct{}, 1)}
	ext := s.cfg.MQTT.External
	if ext.Broker == "" {
		tc := s.cfg.MQTT.Embedded.TLS
		for _, f := range []struct{ field, path string }{
			{"mqtt.embedded.tls.cert_file", tc.CertFile},
			{"mqtt.embedded.tls.key_file", tc.KeyFile},
			{"mqtt.embedded.tls.client_ca_file", tc.ClientCAFile},
		} {
			if _, err := os.ReadFile(f.path); f.path != "" && err != nil {
				return nil, fmt.Errorf("%s: %w", f.field, err)
			}
		}
		b, err := broker.New(broker.Config{
			Addr:         s.cfg.MQTT.Embedded.Listen,
			TLSAddr:      tc.Listen,
			CertFile:     tc.CertFile,
			KeyFile:      tc.KeyFile,
			ClientCAFile: tc.ClientCAFile,
			PasswordFile: s.passwordFile(),
			Fleets:       []string{s.fleetName()},
			DataDir:      filepath.Join(s.cfg.DataDir, "mqtt"),
		}, s.log)
		if err != nil && tc.Listen != "" {
			return nil, fmt.Errorf("mqtt.embedded.tls (cert_file %s, key_file %s, client_ca_file %s): %w", tc.CertFile, tc.KeyFile, tc.ClientCAFile, err)
		}
		if err != nil {
			return nil, err
		}
		mq.addr = "mqtt://" + b.Addr()
		if b.TLSAddr() != "" {
			mq.addr += " mqtts://" + b.TLSAddr()
		}
		mq.client = bus.NewInline(b.Server())
		mq.runs = append(mq.runs, b.Run)
	} else {
		password := os.Getenv("GITFLEET_MQTT_PASSWORD")
		if password == "" && ext.PasswordFile != "" {
			b, err := os.ReadFile(ext.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("mqtt.external.password_file: %w", err)
			}
			password = strings.TrimSpace(string(b))
		}
		p, err := bus.DialPaho(ctx, bus.PahoConfig{Broker: ext.Broker, ClientID: "gitfleet-server-" + s.cfg.Replica,
			Username: ext.Username, Password: password, CAFile: ext.CAFile, CertFile: ext.CertFile, KeyFile: ext.KeyFile}, s.log)
		if err != nil {
			return nil, err
		}
		mq.addr, mq.client = ext.Broker, p
	}
	adv, err := advertise.New(advertise.Config{Fleet: s.fleetName(), Signers: s.keys.timestamp}, mq.client, s.log)
	if err != nil {
		return nil, err
	}
	mq.advertiser = &advertiser{adv}
	mq.runs = append(mq.runs, adv.Run)
	if mq.ingest, err = s.openIngest(mq); err != nil {
		return nil, err
	}
	mq.runs = append(mq.runs, func(ctx context.Context) error { return mq.ingest.Run(ctx, mq.client) })
	return mq, nil
}

// passwordFile is the embedded broker's accounts, NAME:HASH lines as
// mosquitto_passwd writes them; `gitfleet-server add-device` adds one.
func (s *server) passwordFile() string {
	p := filepath.Join(s.cfg.DataDir, "mqtt-passwords")
	if _, err := os.Stat(p); err != nil {
		os.MkdirAll(s.cfg.DataDir, 0o700)
		os.WriteFile(p, nil, 0o600)
	}
	return p
}

// fleetName is the fleet this server runs: server.yaml's `fleet`, else the
// name in fleet.yaml (openGit does not return before it has read it), else,
// with no repository at all, "demo".
func (s *server) fleetName() string {
	if s.cfg.Fleet != "" {
		return s.cfg.Fleet
	}
	if fl, err := s.currentFleet(); err == nil {
		return fl.Name
	}
	return "demo"
}

// advertiser adapts the advertiser to the controller.
type advertiser struct{ a *advertise.Advertiser }

func (x *advertiser) AdvertiseChannel(ctx context.Context, cs *gitfleetv1.ChannelState) error {
	_, err := x.a.SetChannel(ctx, cs)
	return err
}

func (x *advertiser) AdvertiseDesired(ctx context.Context, ds *gitfleetv1.DesiredState) error {
	_, err := x.a.SetDesired(ctx, ds)
	return err
}

// printACL prints the Mosquitto ACL equivalent to the embedded broker's
// rules, for an external broker with mTLS identities or password accounts.
func printACL(_ context.Context, cfg Config, w io.Writer) error {
	fleet := cfg.Fleet
	if fleet == "" {
		return fmt.Errorf("fleet: set the fleet's name in the config (the ACL names its topics)")
	}
	user := cfg.MQTT.External.Username
	if user == "" {
		user = "gitfleet-server"
	}
	acl, err := broker.RenderMosquittoACL(user, []string{fleet})
	if err != nil {
		return err
	}
	_, err = w.Write(acl)
	return err
}

// addDevice adds a password account for device to the embedded broker and
// prints the password, which the device's agent.yaml (mqtt.password_file)
// needs. The broker re-reads the file when it changes.
func addDevice(cfg Config, device string, w io.Writer) error {
	if err := topic.CheckID(device); err != nil {
		return fmt.Errorf("device id: %w", err)
	}
	s := &server{cfg: cfg}
	path := s.passwordFile()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, device+":") {
			return fmt.Errorf("device %s already has an account in %s", device, path)
		}
	}
	var raw [18]byte
	rand.Read(raw[:])
	password := base64.RawURLEncoding.EncodeToString(raw[:])
	hash, err := broker.HashPassword(password)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s:%s\n", device, hash); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(w, password)
	return nil
}

// openIngest reads the fleet's statuses and events into the store and
// nudges the rollout controller when something changed.
func (s *server) openIngest(mq *mqttParts) (*ingest.Ingest, error) {
	in, err := ingest.New(ingest.Config{Fleet: s.fleetName(), OnUpdate: func(ingest.Update) {
		select {
		case mq.changed <- struct{}{}:
		default:
		}
	}}, s.store, s.log)
	if err != nil {
		return nil, err
	}
	return in, nil
}
