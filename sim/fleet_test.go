package sim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/sim"
)

// TestRollout runs two small simulated fleets through a rollout of one
// release on a real Mosquitto and a real gitfleet-server: on channel
// steady every device's new release is healthy, and the rollout goes wave
// by wave to complete; on channel failing every one fails its health check
// and rolls back, and the rollout halts on its failure rate.
func TestRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker := "tcp://" + testenv.Mosquitto(t, "allow_anonymous true\nsys_interval 1\nmax_queued_messages 100000\n")
	fleet := testenv.ID(t)
	const policy = "{waves: [20, 100], wave_duration: 1s, max_failure_rate: 0.2, min_confirmed: 3}"
	repo := firmwareRepo(t, "fleet: "+fleet+"\nchannels:\n"+
		"  steady:\n    release: v1.0.0\n    devices: {device_types: [sim-good]}\n    policy: "+policy+"\n"+
		"  failing:\n    release: v1.0.0\n    devices: {device_types: [sim-bad]}\n    policy: "+policy+"\n")
	api, root := startServer(t, ctx, fleet, broker, repo)

	fleets := map[string]*sim.Fleet{}
	g, gctx := errgroup.WithContext(ctx)
	devCtx, stopDevices := context.WithCancel(gctx)
	for _, c := range []struct {
		channel, deviceType string
		devices             int
		fail                float64
	}{{"steady", "sim-good", 30, 0}, {"failing", "sim-bad", 20, 1}} {
		f, err := sim.New(sim.Config{
			Brokers: []string{broker}, Fleet: fleet, Channel: c.channel, DeviceType: c.deviceType,
			IDPrefix: c.channel + "-", Devices: c.devices, Root: root, Fail: c.fail, SlotSize: 1 << 20,
			Dir: t.TempDir(), BootTime: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		fleets[c.channel] = f
		g.Go(func() error { return f.Run(devCtx) })
	}
	outcomes := map[string]sim.Outcome{}
	var mu sync.Mutex
	var wait errgroup.Group
	for ch := range fleets {
		wait.Go(func() error {
			o, err := sim.WaitRollout(ctx, api, ch, "1.0.0", time.Now(), 200*time.Millisecond, nil)
			mu.Lock()
			outcomes[ch] = o
			mu.Unlock()
			return err
		})
	}
	err := wait.Wait()
	stopDevices()
	if gerr := g.Wait(); gerr != nil {
		t.Errorf("devices: %v", gerr)
	}
	for ch, o := range outcomes {
		t.Logf("%s: %s after %.1f s, waves %v, counts %+v, %s", ch, o.State, o.Elapsed, o.Waves, o.Counts, o.Reason)
	}
	if err != nil {
		t.Fatalf("rollouts: %v", err)
	}

	steady := outcomes["steady"]
	if got, want := steady.State, "complete"; got != want {
		t.Errorf("steady: rollout %s, want %s", got, want)
	}
	if n := len(steady.Waves); n == 0 || steady.Waves[0].Index != 0 || steady.Waves[n-1].Index != 1 {
		t.Errorf("steady: waves %v, want wave 0 then wave 1", steady.Waves)
	}
	if got, want := steady.Counts.Confirmed, 30; got != want {
		t.Errorf("steady: %d devices confirmed, want %d", got, want)
	}
	if got, want := fleets["steady"].Installed("1.0.0"), 30; got != want {
		t.Errorf("steady: %d devices committed 1.0.0, want %d", got, want)
	}

	failing := outcomes["failing"]
	if got, want := failing.State, "halted"; got != want {
		t.Errorf("failing: rollout %s, want %s", got, want)
	}
	if failing.Counts.Confirmed != 0 || failing.Counts.Failed == 0 {
		t.Errorf("failing: %d confirmed and %d failed, want none confirmed and some failed", failing.Counts.Confirmed, failing.Counts.Failed)
	}
	if got := fleets["failing"].Installed("1.0.0"); got != 0 {
		t.Errorf("failing: %d devices run 1.0.0, want every one rolled back", got)
	}
	if got, want := fleets["failing"].Ended("1.0.0"), failing.Counts.Failed; got < want {
		t.Errorf("failing: %d devices ended their update, fewer than the %d the server counts failed", got, want)
	}
}

// firmwareRepo makes a firmware repository whose v1.0.0 tag builds a 64
// KiB image, with fleetYAML as its fleet.yaml, and returns its URL.
func firmwareRepo(t *testing.T, fleetYAML string) string {
	t.Helper()
	git := testenv.Tool(t, "git")
	dir := t.TempDir()
	files := map[string]string{
		"gitfleet.yaml": "product: sim-firmware\ndevice_types: [sim-good, sim-bad]\nbuild:\n  command: ./build.sh\nimages:\n  - {name: rootfs, path: out/rootfs.img, slot: rootfs}\n",
		"build.sh":      "#!/bin/sh\nset -e\nmkdir -p out\nhead -c 65536 /dev/zero | tr '\\0' 'r' > out/rootfs.img\n",
		"fleet.yaml":    fleetYAML,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "firmware"}, {"tag", "-a", "-m", "release", "v1.0.0"}} {
		cmd := exec.Command(git, append([]string{"-C", dir, "-c", "user.name=R", "-c", "user.email=r@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + dir
}

// startServer builds and starts gitfleet-server for fleet on the external
// broker and the firmware repository, and returns a client of its API and
// the root.json it made. The server is stopped when the test ends, and its
// log printed if the test failed.
func startServer(t *testing.T, ctx context.Context, fleet, broker, repo string) (*apiclient.Client, []byte) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gitfleet-server")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/gitfleet-server").CombinedOutput(); err != nil {
		t.Fatalf("build gitfleet-server: %v\n%s", err, out)
	}
	addr := testenv.FreeAddr(t)
	data := filepath.Join(dir, "data")
	config := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("fleet: %s\ndata_dir: %s\nhttp: {listen: %s}\nmqtt: {external: {broker: %s}}\ngit: {url: %s, poll: 200ms}\n",
		fleet, data, addr, broker, repo)), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // the server has its own descriptor
	cmd := exec.Command(bin, "--config", config)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("gitfleet-server's log:\n%s", b)
		}
	})
	token := waitFile(t, ctx, filepath.Join(data, "api-token"))
	api, err := apiclient.New("http://"+addr, strings.TrimSpace(string(token)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return api, waitFile(t, ctx, filepath.Join(data, "keys", "root.json"))
}

// waitFile returns the contents of path once it has some.
func waitFile(t *testing.T, ctx context.Context, path string) []byte {
	t.Helper()
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not appear: %v", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
