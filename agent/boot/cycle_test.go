package boot_test

// These tests run whole update cycles: the agent's side through Env, the
// bootloader's through PowerOn, on every kind of environment. Where a real
// tool exists, the bootloader's side reads and writes the environment with
// it (fw_printenv and fw_setenv, grub-editenv), so both sides are checked
// against the bytes the tools read and write. The fw_* tools serialise on the
// global /var/lock/fw_printenv.lock, and so does the agent's side: these
// tests are not parallel.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/internal/testenv"
)

// A board is one kind of environment: the store the agent's Env writes,
// and the bootloader's view of the same bytes.
type board struct {
	store boot.Store
	// read and write are the bootloader's side.
	read  func(t *testing.T) *bootenv.Vars
	write func(t *testing.T, v *bootenv.Vars)
}

// initial is the environment a board is provisioned with: group A, no trial,
// and a script variable the agent must leave alone.
func initial(t testing.TB) *bootenv.Vars {
	return vars(t, "bootcmd=run gitfleet_boot", "gitfleet_slot=A", "upgrade_available=0", "bootcount=0")
}

var boards = []struct {
	name string
	make func(t *testing.T) board
}{
	{"file", fileBoard},
	{"uboot", func(t *testing.T) board { return ubootBoard(t, false, initial(t)) }},
	{"uboot fw_printenv fw_setenv", func(t *testing.T) board { return ubootBoard(t, true, initial(t)) }},
	{"grub", func(t *testing.T) board { return grubBoard(t, false) }},
	{"grub grub-editenv", func(t *testing.T) board { return grubBoard(t, true) }},
}

// fileBoard is the virtual board's plain file, both sides reading it alike.
func fileBoard(t *testing.T) board {
	f := &boot.File{Path: filepath.Join(t.TempDir(), "bootenv")}
	if err := f.Write(initial(t)); err != nil {
		t.Fatal(err)
	}
	return board{
		store: f,
		read: func(t *testing.T) *bootenv.Vars {
			v, err := f.Read()
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		write: func(t *testing.T, v *bootenv.Vars) {
			if err := f.Write(v); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// ubootBoard is a redundant U-Boot environment in a file, made by
// mkenvimage -r from env. With tools, the bootloader's side is fw_printenv
// and fw_setenv; otherwise bootenv.
func ubootBoard(t *testing.T, tools bool, env *bootenv.Vars) board {
	dir := t.TempDir()
	image := filepath.Join(dir, "uboot.env")
	config := filepath.Join(dir, "fw_env.config")
	text := filepath.Join(dir, "env.txt")
	write(t, text, env.String())
	run(t, "mkenvimage", "-r", "-s", "0x4000", "-o", image, text)
	// Provisioning writes the copy at both offsets: fw_printenv fails on a
	// pair it cannot read whole.
	made, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	write(t, image, string(made)+string(made))
	write(t, config, fmt.Sprintf("%s 0x0000 0x4000\n%s 0x4000 0x4000\n", image, image))
	cfg, err := bootenv.ReadFwEnvConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	store := bootenv.NewUBootEnv(cfg)
	b := board{
		store: store,
		read: func(t *testing.T) *bootenv.Vars {
			v, err := store.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		write: func(t *testing.T, v *bootenv.Vars) {
			if err := store.Write(context.Background(), v); err != nil {
				t.Fatal(err)
			}
		},
	}
	if tools {
		b.read = func(t *testing.T) *bootenv.Vars {
			return parseLines(t, run(t, "fw_printenv", "-c", config))
		}
		b.write = func(t *testing.T, v *bootenv.Vars) {
			script := filepath.Join(t.TempDir(), "script")
			write(t, script, v.String())
			run(t, "fw_setenv", "-c", config, "-s", script)
		}
	}
	return b
}

// grubBoard is a GRUB environment block made by grub-editenv. With tools,
// the bootloader's side is grub-editenv; otherwise bootenv.
func grubBoard(t *testing.T, tools bool) board {
	path := filepath.Join(t.TempDir(), "grubenv")
	run(t, "grub-editenv", path, "create")
	run(t, "grub-editenv", append([]string{path, "set"}, lines(initial(t))...)...)
	env := &bootenv.GRUBEnv{Path: path}
	b := board{
		store: env,
		read: func(t *testing.T) *bootenv.Vars {
			v, err := env.Read()
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		write: func(t *testing.T, v *bootenv.Vars) {
			if err := env.Write(context.Background(), v); err != nil {
				t.Fatal(err)
			}
		},
	}
	if tools {
		b.read = func(t *testing.T) *bootenv.Vars {
			return parseLines(t, run(t, "grub-editenv", path, "list"))
		}
		b.write = func(t *testing.T, v *bootenv.Vars) {
			run(t, "grub-editenv", append([]string{path, "set"}, lines(v)...)...)
		}
	}
	return b
}

// powerOn plays the bootloader at one power-on and returns the group it
// boots and whether it fell back.
func (b board) powerOn(t *testing.T, c boot.Convention) (string, bool) {
	t.Helper()
	d, err := c.PowerOn(b.read(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Save != nil {
		b.write(t, d.Save)
	}
	return d.Group, d.Fallback
}

func TestCycles(t *testing.T) {
	// Each step is "arm G", "commit G", "revert G" (the agent), "boot G"
	// or "fallback G" (a power-on that boots G, falling back or not), or
	// "state G trial N" / "state G" (what the agent reads: default group,
	// trial pending with N boots counted, or none).
	tests := []struct {
		name  string
		tries int
		steps string
	}{
		{name: "healthy update commits", steps: "boot A; arm B; state B trial 0; boot B; state B trial 1; commit B; state B; boot B; boot B; state B"},
		{name: "new group dies once: fallback", steps: "arm B; boot B; fallback A; state A; boot A; state A"},
		{name: "health check fails: revert", steps: "arm B; boot B; revert A; state A; boot A; state A"},
		{name: "reboot before booting the trial", steps: "arm B; state B trial 0; arm B; boot B; commit B; boot B"},
		{name: "three tries", tries: 3, steps: "arm B; boot B; boot B; state B trial 2; boot B; fallback A; boot A; state A"},
		{name: "three tries, healthy on the third", tries: 3, steps: "arm B; boot B; boot B; boot B; commit B; boot B; boot B; boot B; boot B"},
		{name: "two updates, back and forth", steps: "arm B; boot B; commit B; arm A; boot A; commit A; boot A; arm B; boot B; fallback A"},
	}
	for _, bb := range boards {
		t.Run(bb.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					b := bb.make(t)
					c := boot.Convention{Tries: tt.tries}
					e, err := boot.NewEnv(b.store, c)
					if err != nil {
						t.Fatal(err)
					}
					for i, step := range strings.Split(tt.steps, "; ") {
						runStep(t, b, e, c, step)
						if t.Failed() {
							t.Fatalf("after step %d (%s) of %q", i+1, step, tt.steps)
						}
					}
					// The agent never touches other variables.
					if got, _ := b.read(t).Get("bootcmd"); got != "run gitfleet_boot" {
						t.Errorf("bootcmd = %q, want it kept", got)
					}
				})
			}
		})
	}
}

var stateStep = regexp.MustCompile(`^state ([AB])(?: trial (\d+))?$`)

func runStep(t *testing.T, b board, e *boot.Env, c boot.Convention, step string) {
	t.Helper()
	verb, group, _ := strings.Cut(step, " ")
	switch verb {
	case "arm", "commit", "revert":
		do := map[string]func(string) error{"arm": e.Arm, "commit": e.Commit, "revert": e.Revert}[verb]
		if err := do(group); err != nil {
			t.Fatal(err)
		}
		// The bootloader's side reads what the agent wrote.
		want := map[string]string{"gitfleet_slot": group, "upgrade_available": "0", "bootcount": "0"}
		if verb == "arm" {
			want["upgrade_available"] = "1"
			want["bootlimit"] = fmt.Sprint(max(c.Tries, 1))
		}
		env := b.read(t)
		for name, value := range want {
			if got, ok := env.Get(name); got != value || !ok {
				t.Errorf("bootloader reads %s=%q (set: %t) after %s, want %q", name, got, ok, step, value)
			}
		}
	case "boot", "fallback":
		got, fellBack := b.powerOn(t, c)
		if got != group || fellBack != (verb == "fallback") {
			t.Errorf("power-on boots %s (fallback %t), want %s", got, fellBack, step)
		}
		// After a boot, the agent's reading of the running group is right.
		booted, err := e.Booted(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if booted != got {
			t.Errorf("Env.Booted() = %s after booting %s", booted, got)
		}
	case "state":
		m := stateStep.FindStringSubmatch(step)
		s, err := e.State(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		count := m[2]
		if count == "" {
			count = "0"
		}
		want := fmt.Sprintf("default %s trial %t count %s", m[1], m[2] != "", count)
		if got := fmt.Sprintf("default %s trial %t count %d", s.Default, s.Trial, s.BootCount); got != want {
			t.Errorf("State() is %s, want %s", got, want)
		}
	default:
		t.Fatalf("bad step %q", step)
	}
}

// parseLines reads name=value lines, as fw_printenv and grub-editenv list
// print them.
func parseLines(t *testing.T, out string) *bootenv.Vars {
	t.Helper()
	v := new(bootenv.Vars)
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("no '=' in output line %q", line)
		}
		if err := v.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// run runs a tool, found by testenv.Tool, and returns its standard output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return command(t, testenv.Tool(t, name), args...)
}

// command runs the program at path with no input and returns its standard
// output, carriage returns dropped.
func command(t *testing.T, path string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), path, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", path, strings.Join(args, " "), err, stderr.String())
	}
	return strings.ReplaceAll(string(out), "\r", "")
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
