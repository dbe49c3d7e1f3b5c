package bootenv_test

// These tests check the U-Boot environment against the real tools: mkenvimage
// from u-boot-tools and fw_printenv/fw_setenv from libubootenv-tool. The fw_*
// tools serialise on the global /var/lock/fw_printenv.lock, and so do these
// tests, which use it too; none of them is parallel.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/google/go-cmp/cmp"
)

const installTools = "apt-get install -y u-boot-tools libubootenv-tool grub-common"

// run runs a bootloader tool and returns its standard output. A missing tool
// fails the test with the command that installs it.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// runErr is run for a command that may fail: its error carries stderr.
func runErr(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed; install it with: %s", name, installTools)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// toolEnv returns a file-backed environment in a temp dir, its file and an
// fw_env.config for the fw_* tools. It takes the same global lock as they do.
func toolEnv(t *testing.T, redundant bool) (e *bootenv.UBootEnv, image, config string) {
	t.Helper()
	dir := t.TempDir()
	image = filepath.Join(dir, "uboot.env")
	if err := os.WriteFile(image, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	text := image + " 0x0000 0x4000 0x4000\n"
	if redundant {
		text += image + " 0x4000 0x4000 0x4000\n"
	}
	config = filepath.Join(dir, "fw_env.config")
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := bootenv.ReadFwEnvConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return bootenv.NewUBootEnv(cfg), image, config
}

// printed returns v as fw_printenv prints it: sorted name=value lines.
func printed(v *bootenv.Vars) string {
	s := v.Clone()
	s.Sort()
	return s.String()
}

var layouts = []struct {
	name      string
	redundant bool
}{{"single", false}, {"redundant", true}}

func TestReadMkenvimage(t *testing.T) {
	input := "# a comment line\n" +
		"bootcmd=run distro_bootcmd\n" +
		"\n" +
		"bootargs=console=ttyS0,115200 root=/dev/mmcblk0p2 rw\n" +
		"script=echo one\\\necho two\n" +
		"upgrade_available=0\n" +
		"bootcount=0\n" +
		"empty=\n"
	want := newVars(t,
		"bootcmd", "run distro_bootcmd",
		"bootargs", "console=ttyS0,115200 root=/dev/mmcblk0p2 rw",
		"script", "echo one\necho two",
		"upgrade_available", "0",
		"bootcount", "0",
		"empty", "")
	for _, tt := range layouts {
		t.Run(tt.name, func(t *testing.T) {
			e, image, _ := toolEnv(t, tt.redundant)
			in := filepath.Join(t.TempDir(), "env.txt")
			if err := os.WriteFile(in, []byte(input), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-s", "0x4000", "-o", image, in}
			if tt.redundant {
				args = append([]string{"-r"}, args...)
			}
			run(t, "mkenvimage", args...)
			made := readFile(t, image)

			// Same variables in the same order, with 0xff padding: the
			// same bytes, flags 1 for -r.
			ours, err := e.Config.Layout().Marshal(want, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, made) {
				t.Errorf("Marshal() differs from mkenvimage's image:\n ours %q\nmkenv %q", ours[:160], made[:160])
			}

			if tt.redundant {
				// mkenvimage makes one copy; the second is erased flash.
				if err := os.WriteFile(image, append(made, bytes.Repeat([]byte{0xff}, envSize)...), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := e.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(pairs(want), pairs(got)); diff != "" {
				t.Errorf("Read() of mkenvimage's image (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFwPrintenvReadsOurWrites(t *testing.T) {
	for _, tt := range layouts {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			e, image, config := toolEnv(t, tt.redundant)
			v := newVars(t,
				"bootcmd", "if test ${upgrade_available} = 1; then run altbootcmd; fi",
				"bootlimit", "3",
				"bootcount", "0",
				"script", "line one\nline two",
				"back", `C:\slash`,
				"empty", "")
			if err := e.Write(ctx, v); err != nil {
				t.Fatal(err)
			}
			if got, want := run(t, "fw_printenv", "-c", config), printed(v); got != want {
				t.Errorf("fw_printenv after Write:\n%s\nwant:\n%s", got, want)
			}
			for _, n := range []string{"1", "2", "3"} {
				err := e.Update(ctx, func(v *bootenv.Vars) error {
					v.Unset("empty")
					return v.Set("bootcount", n)
				})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := run(t, "fw_printenv", "-n", "-c", config, "bootcount"), n+"\n"; got != want {
					t.Errorf("fw_printenv -n bootcount after Update = %q, want %q", got, want)
				}
			}

			// fw_setenv works on what we wrote, and we read what it wrote.
			run(t, "fw_setenv", "-c", config, "upgrade_available", "1")
			run(t, "fw_setenv", "-c", config, "bootlimit")
			v.Unset("empty")
			v.Unset("bootlimit")
			v.Set("bootcount", "3")
			v.Set("upgrade_available", "1")
			got, err := e.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(printed(v), printed(got)); diff != "" {
				t.Errorf("Read() after fw_setenv (-want +got):\n%s", diff)
			}

			// fw_setenv writes sorted variables; after Sort ours are the
			// same bytes up to the terminator, where its padding (stale
			// heap) starts.
			b := readFile(t, image)
			l := e.Config.Layout()
			copyAt := 0
			if tt.redundant && b[envSize+4] > b[4] {
				copyAt = envSize
			}
			theirs := b[copyAt : copyAt+envSize]
			got.Sort()
			ours, err := l.Marshal(got, theirs[4])
			if err != nil {
				t.Fatal(err)
			}
			end := bytes.Index(ours, []byte{0, 0}) + 2
			if !bytes.Equal(ours[4:end], theirs[4:end]) {
				t.Errorf("fw_setenv's copy differs from Marshal() of its sorted variables:\n ours %q\ntheirs %q", ours[4:end], theirs[4:end])
			}
		})
	}
}

func TestRedundantSelectionMatchesFwPrintenv(t *testing.T) {
	tests := []struct {
		name     string
		flags    [2]uint8
		corrupt  int // copy whose data gets a flipped bit, or -1
		wantCopy string
	}{
		{"higher second", [2]uint8{1, 2}, -1, "1"},
		{"higher first", [2]uint8{2, 1}, -1, "0"},
		{"equal flags", [2]uint8{5, 5}, -1, "0"},
		{"wrapped second", [2]uint8{255, 0}, -1, "1"},
		{"wrapped first", [2]uint8{0, 255}, -1, "0"},
		{"254 beats 0", [2]uint8{254, 0}, -1, "0"},
		{"newer copy corrupt", [2]uint8{1, 2}, 1, "0"},
		{"older copy corrupt", [2]uint8{1, 2}, 0, "1"},
		{"wrapped copy corrupt", [2]uint8{255, 0}, 1, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, image, config := toolEnv(t, true)
			writePair(t, image, [2]*bootenv.Vars{newVars(t, "copy", "0"), newVars(t, "copy", "1")}, tt.flags)
			if tt.corrupt >= 0 {
				b := readFile(t, image)
				b[tt.corrupt*envSize+9] ^= 0x80
				if err := os.WriteFile(image, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := run(t, "fw_printenv", "-n", "-c", config, "copy"), tt.wantCopy+"\n"; got != want {
				t.Errorf("fw_printenv chose copy %q, want %q", got, want)
			}
			v, err := e.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := v.Get("copy"); got != tt.wantCopy {
				t.Errorf("Read() chose copy %q, want %q", got, tt.wantCopy)
			}
		})
	}

	t.Run("both corrupt", func(t *testing.T) {
		e, image, config := toolEnv(t, true)
		if err := os.WriteFile(image, make([]byte, 2*envSize), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runErr(t, "fw_printenv", "-c", config); err == nil {
			t.Errorf("fw_printenv of two zeroed copies succeeded: %q", out)
		}
		if _, err := e.Read(t.Context()); !errors.Is(err, bootenv.ErrCorrupt) {
			t.Errorf("Read() of two zeroed copies: error = %v, want ErrCorrupt", err)
		}
	})
}

func TestFlagsWrapWithFwSetenv(t *testing.T) {
	ctx := t.Context()
	e, image, config := toolEnv(t, true)
	writePair(t, image, [2]*bootenv.Vars{newVars(t, "step", "newer"), newVars(t, "step", "older")}, [2]uint8{255, 254})

	if err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("step", "ours") }); err != nil {
		t.Fatal(err)
	}
	if got, want := flagsOf(readFile(t, image)), [2]uint8{255, 0}; got != want {
		t.Errorf("flags after our Update = %v, want %v", got, want)
	}
	if got, want := run(t, "fw_printenv", "-c", config), "step=ours\n"; got != want {
		t.Errorf("fw_printenv after the wrap = %q, want %q", got, want)
	}

	run(t, "fw_setenv", "-c", config, "step", "theirs")
	if got, want := flagsOf(readFile(t, image)), [2]uint8{1, 0}; got != want {
		t.Errorf("flags after fw_setenv = %v, want %v", got, want)
	}
	v, err := e.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.String(), "step=theirs\n"; got != want {
		t.Errorf("Read() after fw_setenv = %q, want %q", got, want)
	}
}
