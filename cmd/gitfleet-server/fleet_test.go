package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// With `fleet` unset in server.yaml and the repository unreachable at
// start, the server says that the fleet is unknown and retries; it does not
// advertise under a guessed name. Once the repository answers it runs the
// fleet fleet.yaml names: a device of fleet acme gets its channel's state.
func TestFleetNameWaitsForFleetYAML(t *testing.T) {
	repo, signers := firmwareRepo(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "allowed_signers"), signers, 0o644)
	later := filepath.Join(dir, "firmware.git") // where the repository appears later
	cfg := Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Listen = freeAddr(t)
	cfg.MQTT.Embedded.Listen = freeAddr(t)
	cfg.Git.URL = "file://" + later
	cfg.Git.Poll = 300 * time.Millisecond
	cfg.Git.Signatures.Method = "ssh"
	cfg.Git.Signatures.Keys = filepath.Join(dir, "allowed_signers")
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var pw bytes.Buffer
	if err := addDevice(cfg, "board-1", &pw); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	logw := &lockedWriter{w: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, logw) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logText(logw))
		}
	})
	eventually(t, 30*time.Second, "the server to say the fleet is unknown", func() bool {
		return strings.Contains(logText(logw), "fleet unknown: `fleet` is not set in server.yaml")
	})
	// Meanwhile the process is alive (a liveness probe must not restart it)
	// but not ready, and says what it waits for.
	base := "http://" + cfg.HTTP.Listen
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while the fleet is unknown: %d %s, want 200", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for fleet.yaml's fleet name") {
		t.Errorf("/readyz while the fleet is unknown: %d %s, want 503 saying what it waits for", code, body)
	}
	if err := os.Rename(strings.TrimPrefix(repo, "file://"), later); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "/readyz to answer 200 once the fleet is known", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	})

	got := make(chan struct{}, 1)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + cfg.MQTT.Embedded.Listen).SetClientID("board-1").
		SetUsername("board-1").SetPassword(strings.TrimSpace(pw.String())).SetProtocolVersion(4).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond) // the broker starts once the fleet is known
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the embedded broker: %v", tok.Error())
	}
	defer c.Disconnect(100)
	// The broker lets a device read its own fleet's topics only: a server
	// that guessed the fleet's name never delivers this.
	tok := c.Subscribe("gitfleet/v1/acme/channels/production", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("no channel state advertised to fleet acme")
	}
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func logText(l *lockedWriter) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
