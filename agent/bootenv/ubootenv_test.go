package bootenv_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/google/go-cmp/cmp"
)

const envSize = 0x4000

// fileEnv returns an environment in a new, empty file in a temp dir, as a
// redundant pair at 0x0 and 0x4000 or a single copy at 0x0, with its own lock
// file so that tests do not wait on fw_printenv's.
func fileEnv(t *testing.T, redundant bool) (*bootenv.UBootEnv, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "uboot.env")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := bootenv.FwEnvConfig{Copies: []bootenv.FwEnvCopy{{Device: path, Offset: 0, Size: envSize}}}
	if redundant {
		cfg.Copies = append(cfg.Copies, bootenv.FwEnvCopy{Device: path, Offset: envSize, Size: envSize})
	}
	e := bootenv.NewUBootEnv(cfg)
	e.LockFile = filepath.Join(dir, "fw_printenv.lock")
	return e, path
}

// readFile returns the content of the file at path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writePair writes a redundant pair to path: copy i holds vars[i] with
// flags[i].
func writePair(t *testing.T, path string, vars [2]*bootenv.Vars, flags [2]uint8) {
	t.Helper()
	l := bootenv.UBootLayout{Size: envSize, Redundant: true}
	var b []byte
	for i := range vars {
		c, err := l.Marshal(vars[i], flags[i])
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, c...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flagsOf returns the flags byte of each copy of the redundant pair in b.
func flagsOf(b []byte) [2]uint8 { return [2]uint8{b[4], b[envSize+4]} }

func TestUBootEnvStartsFromEmptyFile(t *testing.T) {
	for _, redundant := range []bool{false, true} {
		t.Run(map[bool]string{false: "single", true: "redundant"}[redundant], func(t *testing.T) {
			ctx := t.Context()
			e, path := fileEnv(t, redundant)
			_, err := e.Read(ctx)
			if !errors.Is(err, bootenv.ErrCorrupt) || !strings.Contains(err.Error(), "copy 0 ("+path+" at 0x0) is past the end of the file") {
				t.Fatalf("Read() of an empty file: error = %v, want ErrCorrupt naming copy 0", err)
			}
			called := false
			err = e.Update(ctx, func(*bootenv.Vars) error { called = true; return nil })
			if !errors.Is(err, bootenv.ErrCorrupt) || called {
				t.Fatalf("Update() of an empty file: error = %v, fn called %v; want ErrCorrupt and no call", err, called)
			}

			want := newVars(t, "bootcmd", "run bootslot", "slot", "a")
			if err := e.Write(ctx, want); err != nil {
				t.Fatal(err)
			}
			wantSize := envSize
			if redundant {
				wantSize *= 2
			}
			if got := len(readFile(t, path)); got != wantSize {
				t.Errorf("file size after Write = %#x, want %#x", got, wantSize)
			}
			got, err := e.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(pairs(want), pairs(got)); diff != "" {
				t.Errorf("Read() after Write (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUBootEnvUpdateAlternatesCopies(t *testing.T) {
	ctx := t.Context()
	e, path := fileEnv(t, true)
	if err := e.Write(ctx, newVars(t, "n", "0")); err != nil {
		t.Fatal(err)
	}
	if got, want := flagsOf(readFile(t, path)), [2]uint8{1, 0}; got[0] != want[0] {
		t.Fatalf("first Write flags = %v, want copy 0 flags 1", got)
	}
	steps := []struct {
		value      string
		wantFlags  [2]uint8
		wantActive int
	}{
		{"1", [2]uint8{1, 2}, 1},
		{"2", [2]uint8{3, 2}, 0},
		{"3", [2]uint8{3, 4}, 1},
	}
	for _, step := range steps {
		before := readFile(t, path)
		err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("n", step.value) })
		if err != nil {
			t.Fatal(err)
		}
		after := readFile(t, path)
		if got := flagsOf(after); got != step.wantFlags {
			t.Errorf("n=%s: flags = %v, want %v", step.value, got, step.wantFlags)
		}
		// Only the copy that was not active may change.
		old := 1 - step.wantActive
		if !bytes.Equal(before[old*envSize:(old+1)*envSize], after[old*envSize:(old+1)*envSize]) {
			t.Errorf("n=%s: Update changed copy %d, which was active", step.value, old)
		}
		v, err := e.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := v.Get("n"); got != step.value {
			t.Errorf("Read() n = %q, want %q", got, step.value)
		}
	}
}

func TestUBootEnvFlagsWrap(t *testing.T) {
	ctx := t.Context()
	e, path := fileEnv(t, true)
	writePair(t, path, [2]*bootenv.Vars{newVars(t, "n", "255"), newVars(t, "n", "254")}, [2]uint8{255, 254})
	for _, want := range []struct {
		n     string
		flags [2]uint8
	}{{"0", [2]uint8{255, 0}}, {"1", [2]uint8{1, 0}}} {
		if err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("n", want.n) }); err != nil {
			t.Fatal(err)
		}
		if got := flagsOf(readFile(t, path)); got != want.flags {
			t.Errorf("after writing n=%s: flags = %v, want %v", want.n, got, want.flags)
		}
		v, err := e.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := v.Get("n"); got != want.n {
			t.Errorf("Read() n = %q, want %q", got, want.n)
		}
	}
}

func TestUBootEnvFallsBackFromCorruptCopy(t *testing.T) {
	ctx := t.Context()
	e, path := fileEnv(t, true)
	if err := e.Write(ctx, newVars(t, "n", "old")); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("n", "new") }); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, path)
	b[envSize+7] ^= 0x01 // in copy 1's data, the active copy
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := e.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get("n"); got != "old" {
		t.Errorf("Read() with copy 1 corrupt: n = %q, want %q from copy 0", got, "old")
	}
	b[7] ^= 0x01 // now copy 0 too
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.Read(ctx)
	want := "copy 0 (" + path + " at 0x0) has a bad CRC; copy 1 (" + path + " at 0x4000) has a bad CRC"
	if !errors.Is(err, bootenv.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("Read() with both copies corrupt: error = %v, want ErrCorrupt saying %q", err, want)
	}
}

func TestUBootEnvUpdateWritesNothingOnError(t *testing.T) {
	ctx := t.Context()
	e, path := fileEnv(t, true)
	if err := e.Write(ctx, newVars(t, "a", "1")); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	errStop := errors.New("stop")
	if err := e.Update(ctx, func(v *bootenv.Vars) error { v.Set("a", "2"); return errStop }); !errors.Is(err, errStop) {
		t.Errorf("Update() error = %v, want one wrapping fn's error", err)
	}
	big := strings.Repeat("x", envSize)
	err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("big", big) })
	if err == nil || !strings.Contains(err.Error(), "ENVSIZE 0x4000 leaves 16379 after the 5-byte header") {
		t.Errorf("Update() with too much data: error = %v, want one naming the sizes", err)
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Error("a failed Update changed the file")
	}
}

func TestUBootEnvTwoFilesAndNegativeOffsets(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, make([]byte, 3*envSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := bootenv.ParseFwEnvConfig([]byte(a + " -0x4000 0x4000\n" + b + " 0x4000 0x4000\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := &bootenv.UBootEnv{Config: cfg}
	if err := e.Write(ctx, newVars(t, "n", "1")); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(ctx, func(v *bootenv.Vars) error { return v.Set("n", "2") }); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, a)[2*envSize+4]; got != 1 {
		t.Errorf("copy 0 at the last 0x4000 bytes of a.img: flags = %d, want 1", got)
	}
	if got := readFile(t, b)[envSize+4]; got != 2 {
		t.Errorf("copy 1 at 0x4000 in b.img: flags = %d, want 2", got)
	}
	v, err := e.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get("n"); got != "2" {
		t.Errorf("Read() n = %q, want 2", got)
	}
}

func TestUBootEnvRejectsBadDevices(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, config, wantErr string
	}{
		{"character device", "/dev/null 0 0x4000", "/dev/null is a character device (MTD or UBI flash), which is not supported"},
		{"directory", dir + " 0 0x4000", "is not a block device or regular file (mode d"},
		{"missing", filepath.Join(dir, "missing") + " 0 0x4000", "no such file or directory"},
		{"before the start", "/proc/self/exe -0x40000000 0x4000", "OFFSET -0x40000000 is before the start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := bootenv.ParseFwEnvConfig([]byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			e := &bootenv.UBootEnv{Config: cfg}
			_, err = e.Read(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Read() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
