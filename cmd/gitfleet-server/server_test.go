package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/internal/testenv"
)

// TestTagToConfirmedDevice is the server's whole flow on embedded defaults:
// an SSH-signed tag in a real Git repository is built into a signed bundle,
// advertised over the embedded broker, installed by the real agent binary
// on a file-backed board, which reboots, confirms and reports; the fleet
// status API then shows the device confirmed on the tag's commit and the
// channel's rollout complete.
func TestTagToConfirmedDevice(t *testing.T) {
	repo, signers := firmwareRepo(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "allowed_signers"), signers, 0o644)
	cfg := Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Listen = freeAddr(t)
	cfg.MQTT.Embedded.Listen = freeAddr(t)
	cfg.Git.URL = repo
	cfg.Git.Poll = 300 * time.Millisecond
	cfg.Git.Signatures.Method = "ssh"
	cfg.Git.Signatures.Keys = filepath.Join(dir, "allowed_signers")
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tagToConfirmed(t, cfg, "tcp://"+cfg.MQTT.Embedded.Listen, func() (string, string) {
		// An account on the embedded broker, as an operator adds one.
		var pw bytes.Buffer
		if err := addDevice(cfg, "board-1", &pw); err != nil {
			t.Fatal(err)
		}
		return "board-1", strings.TrimSpace(pw.String())
	})
}

// TestTagToConfirmedDeviceExternal is the same flow on the services a fleet
// past one machine runs, set up by a server.yaml: a real Mosquitto with the
// ACL that confines devices, PostgreSQL, and an S3 server, from which the
// device downloads the bundle by presigned URLs.
func TestTagToConfirmedDeviceExternal(t *testing.T) {
	broker, dsn, bucket := testenv.MQTT(t), testenv.Postgres(t), testenv.S3(t)
	repo, signers := firmwareRepo(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "allowed_signers"), signers, 0o644)
	os.WriteFile(filepath.Join(dir, "mqtt-password"), []byte(broker.Password+"\n"), 0o600)
	config := filepath.Join(dir, "server.yaml")
	os.WriteFile(config, fmt.Appendf(nil, `data_dir: %[1]s/data
http: {listen: %[2]s}
database: %[3]s
objects:
  s3: {endpoint: %[4]s, region: %[5]s, bucket: %[6]s, access_key: %[7]s, secret_key: %[8]s}
mqtt:
  external: {broker: tcp://%[9]s, username: %[10]s, password_file: %[1]s/mqtt-password}
git:
  url: %[11]s
  poll: 300ms
  signatures: {method: ssh, keys: %[1]s/allowed_signers}
`, dir, freeAddr(t), dsn, bucket.Endpoint, bucket.Region, bucket.Name, bucket.AccessKey, bucket.SecretKey,
		broker.Addr, broker.User, repo), 0o644)
	cfg, err := LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	tagToConfirmed(t, cfg, "tcp://"+broker.Addr, func() (string, string) {
		return broker.Devices[0], broker.DevicePassword
	})
}

// tagToConfirmed runs the server of cfg on a repository whose signed tag
// v1.0.0 production runs, waits for the release, then runs a board on the
// broker at brokerURL, with the account account returns, until the API shows
// it confirmed on the release and the rollout complete.
func tagToConfirmed(t *testing.T, cfg Config, brokerURL string, account func() (device, password string)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startServer(t, cfg)
	api := "http://" + cfg.HTTP.Listen + "/api/v1"
	token := waitFile(t, filepath.Join(cfg.DataDir, "api-token"))
	get := func(path string, v any) bool {
		req, _ := http.NewRequest(http.MethodGet, api+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
	}
	eventually(t, 60*time.Second, "release 1.0.0 built", func() bool {
		var rel struct {
			Version string `json:"version"`
		}
		return get("/releases/1.0.0", &rel) && rel.Version == "1.0.0"
	})

	device, password := account()
	b := newBoard(t, filepath.Join(cfg.DataDir, "keys", "root.json"), brokerURL, device, password)
	b.run(t, ctx, func() bool { _, err := os.Stat(b.marker); return err == nil }) // installs, asks to reboot
	b.powerOn(t)
	var events struct {
		Events []json.RawMessage `json:"events"`
	}
	b.run(t, ctx, func() bool { // confirms, reports; runs until its outbox has delivered the whole update's events
		var d struct {
			Version   string `json:"version"`
			Commit    string `json:"commit"`
			Confirmed bool   `json:"confirmed"`
		}
		return get("/devices/"+device, &d) && d.Version == "1.0.0" && d.Confirmed && len(d.Commit) == 40 &&
			get("/devices/"+device+"/events", &events) && len(events.Events) >= 8
	})
	var d map[string]any
	get("/devices/"+device, &d)
	t.Logf("device: %v", d)
	eventually(t, 30*time.Second, "rollout complete", func() bool {
		var ch map[string]any
		if !get("/channels/production", &ch) {
			return false
		}
		b, _ := json.Marshal(ch)
		return strings.Contains(string(b), `"Ready"`) && strings.Contains(strings.ToLower(string(b)), "complete")
	})
	if !get("/devices/"+device+"/events", &events) || len(events.Events) < 8 {
		t.Errorf("device events = %d, want the whole update's", len(events.Events))
	}
	// /metrics counts what the ingest stored.
	resp, err := http.Get("http://" + cfg.HTTP.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`gitfleet_ingest_statuses_total{result="stored"} `, `gitfleet_ingest_events_total{result="new"} `} {
		i := bytes.Index(metrics, []byte(want))
		if i < 0 || bytes.HasPrefix(metrics[i+len(want):], []byte("0\n")) {
			t.Errorf("/metrics: want %s above 0; got:\n%s", want, metrics)
		}
	}
}

// startServer runs the server of cfg until the test ends; if the test
// failed, it logs the server's log.
func startServer(t testing.TB, cfg Config) {
	ctx, cancel := context.WithCancel(context.Background())
	var serverLog bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, &lockedWriter{w: &serverLog}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	})
}

// firmwareRepo makes a firmware repository: gitfleet.yaml, a build script,
// fleet.yaml promoting v1.0.0 to production, and the SSH-signed tag v1.0.0.
func firmwareRepo(t *testing.T) (string, []byte) {
	t.Helper()
	git := testenv.Tool(t, "git")
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "release")
	if out, err := exec.Command(testenv.Tool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "release@acme", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	files := map[string]string{
		"gitfleet.yaml": "product: acme-gateway\ndevice_types: [acme-gw-v2]\nbuild:\n  command: ./build.sh\nimages:\n  - {name: rootfs, path: out/rootfs.img, slot: rootfs}\n",
		"build.sh":      "#!/bin/sh\nset -e\nmkdir -p out\nhead -c 300000 /dev/zero | tr '\\0' 'r' > out/rootfs.img\n",
		"fleet.yaml":    "fleet: acme\nchannels:\n  production:\n    release: v1.0.0\n    devices: {device_types: [acme-gw-v2]}\n    policy: {waves: [100], wave_duration: 1s, min_confirmed: 1}\n",
	}
	for name, content := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755)
	}
	for _, args := range [][]string{{"init", "-b", "main"}, {"add", "."}, {"commit", "-m", "v1.0.0"}, {"tag", "-s", "-m", "release", "v1.0.0"}} {
		cmd := exec.Command(git, append([]string{"-C", dir, "-c", "user.name=R", "-c", "user.email=release@acme", "-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + dir, []byte("release@acme " + string(pub))
}

// board is a device in a temp dir running the real gitfleet-agent binary.
type board struct {
	bin, dir, config, env, cmdline, bootID, marker string
	boots                                          int
}

func newBoard(t *testing.T, root, broker, device, password string) *board {
	t.Helper()
	b := &board{dir: t.TempDir(), bin: filepath.Join(t.TempDir(), "gitfleet-agent")}
	if out, err := exec.Command("go", "build", "-o", b.bin, "../gitfleet-agent").CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	b.config, b.env, b.cmdline = filepath.Join(b.dir, "agent.yaml"), filepath.Join(b.dir, "bootenv"), filepath.Join(b.dir, "cmdline")
	b.bootID, b.marker = filepath.Join(b.dir, "boot_id"), filepath.Join(b.dir, "reboot-requested")
	for _, g := range []string{"A", "B"} {
		os.WriteFile(filepath.Join(b.dir, g+".img"), bytes.Repeat([]byte(g), 1<<20), 0o644)
	}
	os.WriteFile(filepath.Join(b.dir, "mqtt-password"), []byte(password+"\n"), 0o600)
	os.WriteFile(b.config, []byte(fmt.Sprintf(`device: {id: %s, type: acme-gw-v2, fleet: acme, channel: production}
data_dir: data
trust: {root: %s}
slots: {booted: cmdline, cmdline: cmdline, groups: {A: {rootfs: A.img}, B: {rootfs: B.img}}}
bootloader: {type: file, file: bootenv}
system: {boot_id_file: boot_id, reboot_command: [touch, %s]}
health: {commands: [{name: ok, command: ["true"]}]}
mqtt: {broker: %s, username: %s, password_file: mqtt-password, keep_alive: 2s}
`, device, root, b.marker, broker, device)), 0o644)
	b.powerOn(t)
	return b
}

// powerOn boots the board as its bootloader would (boot.Convention).
func (b *board) powerOn(t *testing.T) {
	t.Helper()
	var group string
	err := (&boot.File{Path: b.env}).Update(context.Background(), func(v *bootenv.Vars) error {
		d, err := boot.Convention{}.PowerOn(v)
		if err != nil {
			return err
		}
		if d.Save != nil {
			*v = *d.Save
		}
		group = d.Group
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.boots++
	os.WriteFile(b.cmdline, []byte("gitfleet.slot="+group+"\n"), 0o644)
	os.WriteFile(b.bootID, []byte(fmt.Sprintf("boot-%d", b.boots)), 0o644)
}

// run runs `gitfleet-agent run` until cond holds, then stops it.
func (b *board) run(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, b.bin, "run", "--config", b.config)
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &out}, &lockedWriter{w: &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not get there in 60 s; its log:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitFile(t testing.TB, path string) string {
	t.Helper()
	var b []byte
	eventually(t, 30*time.Second, "file "+path, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(b) > 0
	})
	return string(b)
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
