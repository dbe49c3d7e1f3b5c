package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// mtlsConfig is a server on embedded defaults, fleet acme, with the
// embedded broker's mutual-TLS listener set in server.yaml.
func mtlsConfig(t *testing.T, p *testenv.PKI) Config {
	t.Helper()
	dir := t.TempDir()
	cert, key := p.Issue(t, "broker", "broker", x509.ExtKeyUsageServerAuth)
	config := filepath.Join(dir, "server.yaml")
	os.WriteFile(config, []byte(`fleet: acme
data_dir: `+dir+`/data
http: {listen: `+freeAddr(t)+`}
mqtt:
  embedded:
    listen: `+freeAddr(t)+`
    tls: {listen: `+freeAddr(t)+`, cert_file: `+cert+`, key_file: `+key+`, client_ca_file: `+p.CAFile+`}
`), 0o644)
	cfg, err := LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A device with a client certificate connects to the embedded broker's
// mutual-TLS listener as the certificate's common name, publishes its own
// status, which the server stores, and cannot publish as another device.
func TestEmbeddedBrokerMutualTLS(t *testing.T) {
	p := testenv.NewPKI(t)
	cfg := mtlsConfig(t, p)
	startServer(t, cfg)
	token := strings.TrimSpace(waitFile(t, filepath.Join(cfg.DataDir, "api-token")))

	cert, key := p.Issue(t, "board-1", "board-1", x509.ExtKeyUsageClientAuth)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	connect := func() mqtt.Client {
		t.Helper()
		opts := mqtt.NewClientOptions().AddBroker("ssl://" + cfg.MQTT.Embedded.TLS.Listen).SetClientID("board-1").
			SetUsername("board-2"). // the certificate's identity wins over the username
			SetTLSConfig(&tls.Config{RootCAs: p.Roots(), Certificates: []tls.Certificate{pair}}).SetProtocolVersion(4).
			SetAutoReconnect(false).SetCleanSession(true).
			SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond)
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("connect with a client certificate: %v", tok.Error())
		}
		return c
	}
	publish := func(c mqtt.Client, device string) {
		t.Helper()
		b, err := proto.Marshal(&gitfleetv1.DeviceStatus{DeviceId: device, ProtocolVersion: gitfleetv1.ProtocolVersion,
			Time: timestamppb.Now(), Online: true, DeviceType: "acme-gw-v2", Version: "1.0.0", UpdateState: "idle"})
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Publish("gitfleet/v1/acme/devices/"+device+"/status", 1, false, b)
		tok.WaitTimeout(10 * time.Second) // the broker drops a client that publishes where it may not, unanswered
	}
	get := func(device string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+cfg.HTTP.Listen+"/api/v1/devices/"+device, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// As another device: refused, and the broker drops the connection.
	c := connect()
	publish(c, "board-2")
	eventually(t, 30*time.Second, "the broker to drop board-1 for publishing as board-2", func() bool { return !c.IsConnectionOpen() })
	c.Disconnect(0)
	c = connect()
	defer c.Disconnect(100)
	publish(c, "board-1")
	eventually(t, 30*time.Second, "board-1's status stored", func() bool { return get("board-1") == http.StatusOK })
	if got := get("board-2"); got != http.StatusNotFound {
		t.Errorf("GET /devices/board-2 after board-1 published as board-2: status %d, want 404", got)
	}
}

// A missing or unreadable file of the TLS listener is named by its field.
func TestEmbeddedBrokerTLSBadFiles(t *testing.T) {
	p := testenv.NewPKI(t)
	for _, c := range []struct {
		name, field string
		edit        func(cfg *Config)
	}{
		{"missing cert", "mqtt.embedded.tls.cert_file", func(cfg *Config) { cfg.MQTT.Embedded.TLS.CertFile = "/nonexistent/broker.pem" }},
		{"missing client CA", "mqtt.embedded.tls.client_ca_file", func(cfg *Config) { cfg.MQTT.Embedded.TLS.ClientCAFile = "/nonexistent/ca.pem" }},
		{"key is not PEM", "mqtt.embedded.tls", func(cfg *Config) {
			os.WriteFile(cfg.MQTT.Embedded.TLS.KeyFile, []byte("garbage"), 0o600)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mtlsConfig(t, p)
			c.edit(&cfg)
			err := serve(context.Background(), cfg, &lockedWriter{w: new(bytes.Buffer)})
			if err == nil || !strings.HasPrefix(err.Error(), c.field) {
				t.Errorf("serve: %v, want an error naming %s", err, c.field)
			}
		})
	}
}
