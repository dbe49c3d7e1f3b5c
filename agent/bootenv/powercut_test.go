package bootenv_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
)

// powerCutEnvs writes an environment whose two copies are both valid, then
// updates it, and returns the file's bytes before and after the update and
// the variables each holds. The update rewrites copy 0.
func powerCutEnvs(t *testing.T, e *bootenv.UBootEnv, image string) (before, after []byte, older, newer *bootenv.Vars) {
	t.Helper()
	ctx := t.Context()
	// Long values spread the variables over many sectors, so that cuts
	// fall inside them as well as in the header and the padding.
	older = newVars(t,
		"slot", "a",
		"bootcmd", "run bootslot",
		"upgrade_available", "0",
		"bootcount", "0",
		"bootargs", strings.Repeat("quiet ", 700))
	if err := e.Write(ctx, newVars(t, "slot", "a")); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(ctx, func(v *bootenv.Vars) error {
		for name, value := range older.All() {
			v.Set(name, value)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before = readFile(t, image)
	newer = older.Clone()
	newer.Set("slot", "b")
	newer.Set("upgrade_available", "1")
	newer.Set("bootargs", strings.Repeat("debug ", 900))
	if err := e.Update(ctx, func(v *bootenv.Vars) error {
		for name, value := range newer.All() {
			v.Set(name, value)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after = readFile(t, image)
	if !bytes.Equal(before[envSize:], after[envSize:]) {
		t.Fatal("the update wrote into copy 1, the active copy")
	}
	if bytes.Equal(before[:envSize], after[:envSize]) {
		t.Fatal("the update did not write copy 0")
	}
	return before, after, older, newer
}

// checkCut reads the environment after a simulated cut and checks that it is
// the new one exactly when copy 0 holds every byte of the new copy, and the
// old one otherwise: never a mix, never an error.
func checkCut(t *testing.T, e *bootenv.UBootEnv, disk, after []byte, older, newer *bootenv.Vars, what string) {
	t.Helper()
	want := older
	if bytes.Equal(disk[:envSize], after[:envSize]) {
		want = newer
	}
	got, err := e.Read(t.Context())
	if err != nil {
		t.Fatalf("%s: Read(): %v", what, err)
	}
	if got.String() != want.String() {
		which := "old"
		if want == newer {
			which = "new"
		}
		t.Fatalf("%s: Read() returned neither the %s environment nor the other:\n%.200q", what, which, got.String())
	}
}

// TestUBootEnvPowerCutAtEveryByte cuts power after each byte of the write of
// the inactive copy, written in order: the file holds a prefix of the new copy
// and the rest of the copy it replaces.
func TestUBootEnvPowerCutAtEveryByte(t *testing.T) {
	e, image, config := toolEnv(t, true)
	before, after, older, newer := powerCutEnvs(t, e, image)
	f, err := os.OpenFile(image, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	disk := bytes.Clone(before)
	if _, err := f.WriteAt(disk, 0); err != nil {
		t.Fatal(err)
	}
	// fw_printenv must agree at the edges of the header and a few points in
	// the data; checking it at every byte would take minutes.
	toolCuts := map[int]bool{0: true, 3: true, 4: true, 5: true, 6: true, 2048: true, envSize - 1: true, envSize: true}
	for cut := 0; cut <= envSize; cut++ {
		if cut > 0 {
			disk[cut-1] = after[cut-1]
			if _, err := f.WriteAt(disk[cut-1:cut], int64(cut-1)); err != nil {
				t.Fatal(err)
			}
		}
		what := fmt.Sprintf("cut after %d bytes", cut)
		checkCut(t, e, disk, after, older, newer, what)
		if toolCuts[cut] {
			got, err := e.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if out, want := run(t, "fw_printenv", "-c", config), printed(got); out != want {
				t.Fatalf("%s: fw_printenv disagrees with Read():\n%.300q\nwant\n%.300q", what, out, want)
			}
		}
	}

	// After a cut, the next write goes to the torn copy again and the
	// environment moves on from the old variables.
	disk = bytes.Clone(before)
	copy(disk, after[:1000]) // inside the variables, which differ
	if _, err := f.WriteAt(disk, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(t.Context(), func(v *bootenv.Vars) error { return v.Set("bootcount", "1") }); err != nil {
		t.Fatal(err)
	}
	got, err := e.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := older.Clone()
	want.Set("bootcount", "1")
	if got.String() != want.String() {
		t.Errorf("Update() after a cut = %.200q, want the old environment with bootcount=1", got.String())
	}
	if got := readFile(t, image)[4]; got != 3 {
		t.Errorf("flags of the rewritten copy = %d, want 3", got)
	}
}

// TestUBootEnvPowerCutOutOfOrder cuts power after each sector of the write,
// with the sectors reaching the medium in a random order, as a device with a
// write cache may reorder them.
func TestUBootEnvPowerCutOutOfOrder(t *testing.T) {
	e, image := fileEnv(t, true)
	before, after, older, newer := powerCutEnvs(t, e, image)
	const sector = 512
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 0))
		disk := bytes.Clone(before)
		for n, s := range rng.Perm(envSize / sector) {
			copy(disk[s*sector:(s+1)*sector], after[s*sector:(s+1)*sector])
			if err := os.WriteFile(image, disk, 0o644); err != nil {
				t.Fatal(err)
			}
			checkCut(t, e, disk, after, older, newer, fmt.Sprintf("seed %d, %d sectors written", seed, n+1))
		}
	}
}
