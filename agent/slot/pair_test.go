package slot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/slot"
	"github.com/gitfleet/gitfleet/agent/update"
)

var _ update.Slots = (*slot.Pair)(nil)

const imageSize = 64 << 10

// images creates an image file for each slot of both groups in a temp dir,
// filled with a byte of its own, and returns the config that maps them.
func images(t *testing.T) slot.Config {
	t.Helper()
	dir := t.TempDir()
	c := slot.Config{Groups: map[string]map[string]string{slot.A: {}, slot.B: {}}}
	fill := byte('a')
	for _, g := range []string{slot.A, slot.B} {
		for _, class := range []string{"boot", "rootfs"} {
			path := filepath.Join(dir, g+"-"+class+".img")
			if err := os.WriteFile(path, bytes.Repeat([]byte{fill}, imageSize), 0o644); err != nil {
				t.Fatal(err)
			}
			c.Groups[g][class] = path
			fill++
		}
	}
	return c
}

// newPair returns a pair over images whose running group is fixed.
func newPair(t *testing.T, c slot.Config, booted string) *slot.Pair {
	t.Helper()
	c.Booted = booted
	p, err := slot.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot returns the bytes of every image in c that exists.
func snapshot(t *testing.T, c slot.Config) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for g, slots := range c.Groups {
		for class, path := range slots {
			if _, err := os.Stat(path); err == nil {
				m[g+"/"+class] = readFile(t, path)
			}
		}
	}
	return m
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenForWritingRefusesTheRunningGroup(t *testing.T) {
	tests := []struct {
		name string
		// alias changes the config (and files) so that the B slot opened
		// for writing is, somehow, a running one.
		alias   func(t *testing.T, c slot.Config)
		group   string
		class   string
		wantErr string
	}{
		{
			name: "running group by name", group: slot.A, class: "rootfs",
			wantErr: "A is the running group",
		},
		{
			name: "symbolic link to the running slot", group: slot.B, class: "rootfs",
			alias: func(t *testing.T, c slot.Config) {
				link := filepath.Join(t.TempDir(), "alias.img")
				if err := os.Symlink(c.Groups[slot.A]["rootfs"], link); err != nil {
					t.Fatal(err)
				}
				c.Groups[slot.B]["rootfs"] = link
			},
			wantErr: "is the running slot A/rootfs",
		},
		{
			name: "hard link to another class of the running group", group: slot.B, class: "rootfs",
			alias: func(t *testing.T, c slot.Config) {
				link := filepath.Join(filepath.Dir(c.Groups[slot.A]["boot"]), "hardlink.img")
				if err := os.Link(c.Groups[slot.A]["boot"], link); err != nil {
					t.Fatal(err)
				}
				c.Groups[slot.B]["rootfs"] = link
			},
			wantErr: "is the running slot A/boot",
		},
		{
			name: "running slot missing, so it cannot be told apart", group: slot.B, class: "rootfs",
			alias: func(t *testing.T, c slot.Config) {
				c.Groups[slot.A]["boot"] = filepath.Join(t.TempDir(), "missing.img")
			},
			wantErr: "check it is not the running slot A/boot",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := images(t)
			if tt.alias != nil {
				tt.alias(t, c)
			}
			before := snapshot(t, c)
			p := newPair(t, c, slot.A)
			s, err := p.Open(tt.group, tt.class, true)
			if err == nil {
				s.Write([]byte("overwritten"))
				s.Sync()
				s.Close()
				t.Fatalf("Open(%s, %s, write) succeeded, want an error", tt.group, tt.class)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%s, %s, write) error = %q, want it to say %q", tt.group, tt.class, err, tt.wantErr)
			}
			if s != nil {
				t.Errorf("Open returned a non-nil slot %v with its error", s)
			}
			for name, want := range before {
				if got := readFile(t, c.Groups[name[:1]][name[2:]]); !bytes.Equal(got, want) {
					t.Errorf("slot %s changed after a refused write", name)
				}
			}
		})
	}
}

func TestOpenForReadingAllowsTheRunningGroup(t *testing.T) {
	c := images(t)
	p := newPair(t, c, slot.A)
	s, err := p.Open(slot.A, "rootfs", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, c.Groups[slot.A]["rootfs"]); !bytes.Equal(got, want) {
		t.Errorf("read %d bytes of A/rootfs, want its %d bytes", len(got), len(want))
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write on a slot opened for reading succeeded")
	}
}

func TestWriteTheOtherGroup(t *testing.T) {
	c := images(t)
	want := readFile(t, c.Groups[slot.B]["rootfs"])
	p := newPair(t, c, slot.A)
	s, err := p.Open(slot.B, "rootfs", true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Size(); err != nil || got != imageSize {
		t.Errorf("Size() = %d, %v, want %d, nil", got, err, imageSize)
	}

	// A large write at an offset, as a resumed update writes a chunk.
	data := bytes.Repeat([]byte("gitfleet"), 4096)
	const off = 1000
	if _, err := s.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(data), n, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}

	// Writing near the end writes what fits and fails; nothing grows.
	if _, err := s.Seek(-3, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	n, err := s.Write([]byte("12345"))
	if err == nil || !strings.Contains(err.Error(), "past the end of the slot") {
		t.Errorf("Write past the end = %d, %v, want an error about the end of the slot", n, err)
	}
	if n != 3 {
		t.Errorf("Write past the end wrote %d bytes, want the 3 that fit", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	copy(want[off:], data)
	copy(want[imageSize-3:], "123")
	if got := readFile(t, c.Groups[slot.B]["rootfs"]); !bytes.Equal(got, want) {
		t.Errorf("B/rootfs holds %d bytes, not the %d written over its old content", len(got), len(want))
	}
}

func TestBooted(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string // written to the command line file; "-" for none
		config  slot.Config
		detect  slot.Detector
		want    string
		wantErr string
	}{
		{name: "cmdline", cmdline: "console=ttyS0 root=/dev/mmcblk0p3 gitfleet.slot=B rw\n", want: slot.B},
		{name: "cmdline quoted", cmdline: `quiet "gitfleet.slot=A" x="a b"` + "\n", want: slot.A},
		{name: "cmdline last wins", cmdline: "gitfleet.slot=A gitfleet.slot=B\n", want: slot.B},
		{name: "cmdline custom key", cmdline: "rauc.slot=B gitfleet.slot=A", config: slot.Config{CmdlineKey: "rauc.slot"}, want: slot.B},
		{name: "cmdline without the key", cmdline: "console=ttyS0 gitfleet.slots=A\n", wantErr: "has no gitfleet.slot=: have the bootloader pass gitfleet.slot=A or gitfleet.slot=B"},
		{name: "cmdline with another group", cmdline: "gitfleet.slot=C\n", wantErr: `unknown slot group "C"`},
		{name: "cmdline missing", cmdline: "-", wantErr: "read kernel command line"},
		{name: "fixed", config: slot.Config{Booted: "B"}, want: slot.B},
		{name: "bootloader", config: slot.Config{Booted: slot.BootedBootloader}, detect: slot.Fixed(slot.A), want: slot.A},
		{name: "bootloader error", config: slot.Config{Booted: slot.BootedBootloader}, detect: failing{}, wantErr: "environment unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.config
			c.Groups = images(t).Groups
			if tt.cmdline != "" {
				c.Cmdline = filepath.Join(t.TempDir(), "cmdline")
				if tt.cmdline != "-" {
					if err := os.WriteFile(c.Cmdline, []byte(tt.cmdline), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			p, err := slot.New(c, tt.detect)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Booted()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Booted() = %q, %v, want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Booted() = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

// failing is a Detector that cannot tell.
type failing struct{}

func (failing) Booted(context.Context) (string, error) {
	return "", errors.New("environment unreadable")
}

func TestNewNeedsTheBootloaderItIsToldToAsk(t *testing.T) {
	c := images(t)
	c.Booted = slot.BootedBootloader
	if _, err := slot.New(c, nil); err == nil {
		t.Error("New with booted: bootloader and no bootloader succeeded")
	}
}

func TestOther(t *testing.T) {
	p := newPair(t, images(t), slot.A)
	for _, tt := range []struct{ group, want string }{{slot.A, slot.B}, {slot.B, slot.A}} {
		if got, err := p.Other(tt.group); err != nil || got != tt.want {
			t.Errorf("Other(%s) = %q, %v, want %q", tt.group, got, err, tt.want)
		}
	}
	if got, err := p.Other("a"); err == nil {
		t.Errorf("Other(a) = %q, want an error", got)
	}
}

func TestOpenUnknownSlots(t *testing.T) {
	p := newPair(t, images(t), slot.A)
	tests := []struct{ name, group, class, wantErr string }{
		{"group", "C", "rootfs", `unknown slot group "C"`},
		{"class", slot.B, "data", "no such slot class: have boot, rootfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, write := range []bool{false, true} {
				if _, err := p.Open(tt.group, tt.class, write); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open(%s, %s, %t) error = %v, want one saying %q", tt.group, tt.class, write, err, tt.wantErr)
				}
			}
		})
	}
}

func TestOpenRefusesOtherFileTypes(t *testing.T) {
	tests := []struct{ name, path, wantErr string }{
		{"directory", "", "is not a block device or a regular file"},
		{"character device", "/dev/null", "is a character device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := images(t)
			path := tt.path
			if path == "" {
				path = t.TempDir()
			}
			c.Groups[slot.B]["rootfs"] = path
			p := newPair(t, c, slot.A)
			if _, err := p.Open(slot.B, "rootfs", true); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(B, rootfs) of %s: error = %v, want one saying %q", path, err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() slot.Config {
		return slot.Config{Groups: map[string]map[string]string{
			slot.A: {"rootfs": "/dev/mmcblk0p2", "boot": "/dev/mmcblk0p1"},
			slot.B: {"rootfs": "/dev/mmcblk0p3", "boot": "/dev/mmcblk0p4"},
		}}
	}
	tests := []struct {
		name    string
		change  func(c *slot.Config)
		wantErr string // empty: valid
	}{
		{name: "valid", change: func(c *slot.Config) {}},
		{name: "fixed group", change: func(c *slot.Config) { c.Booted = "B" }},
		{name: "no groups", change: func(c *slot.Config) { c.Groups = nil }, wantErr: "groups are []: want exactly A and B"},
		{name: "third group", change: func(c *slot.Config) { c.Groups["C"] = map[string]string{"rootfs": "/x"} }, wantErr: "groups are [A B C]"},
		{name: "empty group", change: func(c *slot.Config) { c.Groups[slot.B] = nil }, wantErr: "groups.B is empty: map each slot class"},
		{name: "class in one group only", change: func(c *slot.Config) { delete(c.Groups[slot.B], "boot") }, wantErr: `groups.B has no "boot" slot but groups.A has`},
		{name: "empty path", change: func(c *slot.Config) { c.Groups[slot.B]["boot"] = "" }, wantErr: "groups.B.boot is empty"},
		{name: "shared path", change: func(c *slot.Config) { c.Groups[slot.B]["rootfs"] = "/dev/mmcblk0p2" }, wantErr: "groups.A.rootfs and groups.B.rootfs are both /dev/mmcblk0p2"},
		{name: "empty class", change: func(c *slot.Config) { c.Groups[slot.A][""] = "/x"; c.Groups[slot.B][""] = "/y" }, wantErr: "empty class name"},
		{name: "bad booted", change: func(c *slot.Config) { c.Booted = "a" }, wantErr: `booted is "a": want cmdline, bootloader, A or B`},
		{name: "bad key", change: func(c *slot.Config) { c.CmdlineKey = "gitfleet.slot=" }, wantErr: "cmdline_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}
