package vboard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/hil/console"
	"github.com/gitfleet/gitfleet/hil/power"
)

func TestImageRoundTrip(t *testing.T) {
	var good bytes.Buffer
	if err := WriteImage(&good, Unhealthy, "1.4.0", 4096); err != nil {
		t.Fatal(err)
	}
	torn := bytes.Clone(good.Bytes())
	torn[3000] ^= 1
	cases := []struct {
		name string
		data []byte
		want string // error substring, "" for success
	}{
		{"whole", good.Bytes(), ""},
		{"in a larger slot", append(bytes.Clone(good.Bytes()), make([]byte, 8192)...), ""},
		{"torn", torn, "torn or corrupted"},
		{"short", good.Bytes()[:2000], "payload is"},
		{"blank slot", make([]byte, 8192), ErrNoImage.Error()},
		{"empty slot", nil, ErrNoImage.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im, err := ReadImage(bytes.NewReader(tc.data))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if im.Kind != Unhealthy || im.Version != "1.4.0" || im.Payload != 4096-HeaderSize {
				t.Errorf("got %+v", im)
			}
		})
	}
}

func TestParseHeaderRefuses(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	cases := []struct{ name, line, want string }{
		{"other magic", "ANDROID! v1", "not a gitfleet vboard image"},
		{"later format", Magic + " v2 kind=healthy", `format "v2"`},
		{"unknown kind", Magic + " v1 kind=sick version=1 payload=1 sha256=" + sum, `kind "sick"`},
		{"missing hash", Magic + " v1 kind=healthy version=1 payload=1", "sha256= is missing"},
		{"repeated field", Magic + " v1 kind=healthy kind=broken", "once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseHeader(tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// buildAgent builds the real gitfleet-agent once per test binary.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitfleet-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gitfleet-agent").CombinedOutput(); err != nil {
		t.Fatalf("build gitfleet-agent: %v\n%s", err, out)
	}
	return bin
}

// startBoard starts a virtual board and opens its console and power;
// configure, if not nil, changes its configuration first.
func startBoard(t *testing.T, agent string, configure func(*Config)) (*Board, *console.Console, *power.VBoard) {
	t.Helper()
	dir := t.TempDir()
	tr := bundletest.NewTrust(t, 1, 1, time.Now().Add(time.Hour))
	root := filepath.Join(dir, "root.json")
	os.WriteFile(root, tr.RootJSON, 0o644)
	cfg := Config{Dir: filepath.Join(dir, "board"), Agent: agent, DeviceID: "vb-1", DeviceType: "gitfleet-vboard",
		Root: root, ConsoleLink: filepath.Join(dir, "console"), Watchdog: 500 * time.Millisecond, KernelDelay: 50 * time.Millisecond}
	if configure != nil {
		configure(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("board: %v", err)
		}
	})
	c, err := console.Open(console.Config{Port: filepath.Join(dir, "console")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return b, c, &power.VBoard{Socket: b.ControlPath()}
}

func expect(t *testing.T, c *console.Console, pattern string) console.Match {
	t.Helper()
	m, err := c.Expect(context.Background(), 20*time.Second, regexp.MustCompile(pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBrokenImageFallsBack arms a trial of slot B holding a broken image,
// as the agent does, and checks the board panics, the watchdog resets it,
// and the bootloader falls back to A past the boot limit.
func TestBrokenImageFallsBack(t *testing.T) {
	b, c, pw := startBoard(t, buildAgent(t), nil)
	f, err := os.OpenFile(b.path("slots", "B.img"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteImage(f, Broken, "1.5.0", 8192); err != nil {
		t.Fatal(err)
	}
	f.Close()
	env, err := boot.NewEnv(&boot.File{Path: b.path("bootenv")}, boot.Convention{})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Arm("B"); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if err := pw.On(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `^U-Boot \d`)
	expect(t, c, `trial of slot B: boot 1 of 1`)
	expect(t, c, `gitfleet\.slot=B`)
	expect(t, c, `Kernel panic - not syncing`)
	expect(t, c, `^U-Boot \d`) // the watchdog
	expect(t, c, `^Warning: Bootlimit \(1\) exceeded\. Using altbootcmd\.$`)
	expect(t, c, `gitfleet\.slot=A`)
	expect(t, c, `# $`)
	v, err := (&boot.File{Path: b.path("bootenv")}).Read()
	if err != nil {
		t.Fatal(err)
	}
	if got := (boot.Convention{}).State(v); got != (boot.State{Default: "A", BootLimit: 1}) {
		t.Errorf("environment after the fallback: %+v", got)
	}
}

// TestPowerOffKillsTheSystem checks that a power cut leaves no process of
// the system running, and that typing reboot at the prompt restarts the
// board.
func TestPowerOffKillsTheSystem(t *testing.T) {
	_, c, pw := startBoard(t, buildAgent(t), nil)
	ctx := context.Background()
	if err := pw.On(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `# $`)
	c.Send("sleep 1000 & echo \"sleeping $!\"")
	m := expect(t, c, `^sleeping (\d+)`)
	c.Send("reboot")
	expect(t, c, `reboot: Restarting system`)
	expect(t, c, `^U-Boot \d`)
	if err := pw.Do(ctx, "state"); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `# $`)
	if err := pw.Off(ctx); err != nil {
		t.Fatal(err)
	}
	// Dead processes may linger as zombies until their new parent reaps
	// them: only a live one is a failure.
	if stat, err := os.ReadFile("/proc/" + m.Groups[1] + "/stat"); err == nil && !regexp.MustCompile(`\) [ZX] `).Match(stat) {
		t.Errorf("process %s still runs after the power cut: %s", m.Groups[1], stat)
	}
	if err := pw.Do(ctx, "dance"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown control command: err = %v", err)
	}
	if _, err := c.Expect(ctx, 300*time.Millisecond, regexp.MustCompile(`.`)); !errors.As(err, new(*console.TimeoutError)) {
		t.Errorf("a powered-off board printed something: %v", err)
	}
}

// TestDaemonService checks the board's init system for the agent's daemon:
// with a broker the daemon starts at boot, `service gitfleet-agent stop`
// returns once it has exited (an install needs its data directory) and
// start runs it again; a daemon that dies says so on the console.
func TestDaemonService(t *testing.T) {
	agent := buildAgent(t)
	// Nothing listens on port 1: the daemon keeps trying to connect.
	_, c, pw := startBoard(t, agent, func(c *Config) {
		c.Broker = "tcp://127.0.0.1:1"
		c.MQTTPasswordFile = filepath.Join(t.TempDir(), "password")
		os.WriteFile(c.MQTTPasswordFile, []byte("secret\n"), 0o600)
	})
	if err := pw.On(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `vboard: starting gitfleet-agent run`)
	expect(t, c, `# $`)
	// Matched at the end of a line: the shell's prompt may come first.
	for _, step := range []struct{ cmd, want string }{
		{"service gitfleet-agent status", `gitfleet-agent is running$`},
		{"service gitfleet-agent stop; echo stop=$?", `stop=0$`},
		{"service gitfleet-agent status; echo status=$?", `status=3$`},
		// The daemon's lock is free: a command that takes it runs.
		{"gitfleet-agent resume; echo resume=$?", `resume=0$`},
		{"service gitfleet-agent start; echo start=$?", `start=0$`},
		{"service gitfleet-agent status", `gitfleet-agent is running$`},
		{"gitfleet-agent resume; echo resume=$?", `resume=1$`}, // the daemon holds the lock
	} {
		c.Send(step.cmd)
		expect(t, c, step.want)
	}

	// A daemon that cannot start: no password file.
	_, c, pw = startBoard(t, agent, func(c *Config) {
		c.Broker, c.MQTTPasswordFile = "tcp://127.0.0.1:1", filepath.Join(t.TempDir(), "missing")
	})
	if err := pw.On(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `gitfleet-agent run exited with status 1$`)
}
