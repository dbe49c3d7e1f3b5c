// Command libfloor is the floor under gitfleet-agent's binary size and
// memory: a program that links the libraries the agent cannot do without
// and none of its own logic. bench/agent.sh builds it like the agent
// (static, -trimpath -ldflags "-s -w"), runs it three times and puts its
// size and median peak RSS beside the agent's.
//
// It calls each library the way the agent does, so the linker keeps the
// code the agent keeps: read a YAML config, fetch over HTTPS with a pinned
// CA, connect to an MQTT broker over TLS and publish a protobuf status,
// verify a TUF root (go-tuf, and through it sigstore's verifiers), write
// JSON and a structured log line. The fetch and the connection fail
// against the config bench/agent.sh gives it (nothing listens), which does
// not change what is linked.
//
// Usage: libfloor CONFIG.yaml
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/goccy/go-yaml"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"google.golang.org/protobuf/proto"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

type config struct {
	Broker string `yaml:"broker"`
	URL    string `yaml:"url"`
	CA     string `yaml:"ca"`
	Root   string `yaml:"root"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "libfloor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: libfloor CONFIG.yaml")
	}
	raw, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var c config
	if err := yaml.UnmarshalWithOptions(raw, &c, yaml.Strict()); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(c.CA); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	if resp, err := client.Get(c.URL); err == nil {
		resp.Body.Close()
	}

	status, err := proto.Marshal(&gitfleetv1.DeviceStatus{DeviceId: "libfloor"})
	if err != nil {
		return err
	}
	broker := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(c.Broker).SetTLSConfig(tlsConfig).SetConnectTimeout(time.Second))
	if t := broker.Connect(); t.WaitTimeout(time.Second) && t.Error() == nil {
		broker.Publish("libfloor/status", 1, false, status).WaitTimeout(time.Second)
		broker.Disconnect(0)
	}
	var back gitfleetv1.DeviceStatus
	if err := proto.Unmarshal(status, &back); err != nil {
		return err
	}

	if rootJSON, err := os.ReadFile(c.Root); err == nil {
		if root, err := metadata.Root().FromBytes(rootJSON); err == nil {
			_ = root.VerifyDelegate(metadata.ROOT, root)
		}
	}

	out, err := json.Marshal(c)
	if err != nil {
		return err
	}
	slog.Info("libfloor", "config", string(out), "device", back.GetDeviceId())
	return nil
}
