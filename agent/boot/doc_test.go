package boot_test

import (
	"os"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/boot"
)

// docBlock returns the fenced code block of BOOTCOUNT.md whose info string
// is info, so that the scripts users copy are the ones the tests run.
func docBlock(t *testing.T, info string) string {
	t.Helper()
	b, err := os.ReadFile("BOOTCOUNT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n```"+info+"\n")
	if !ok {
		t.Fatalf("BOOTCOUNT.md has no ```%s block", info)
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("BOOTCOUNT.md: the ```%s block does not end", info)
	}
	return block + "\n"
}

// TestUBootSampleEnvironment checks the U-Boot environment of BOOTCOUNT.md:
// mkenvimage takes it, fw_printenv reads it as group A with no trial, and it
// goes through an update that falls back, its scripts untouched.
func TestUBootSampleEnvironment(t *testing.T) {
	sample := parseLines(t, docBlock(t, "uboot-env"))
	b := ubootBoard(t, true, sample)
	c := boot.Convention{}
	if got, want := c.State(b.read(t)), (boot.State{Default: "A", BootLimit: 1}); got != want {
		t.Errorf("fw_printenv reads the sample as %+v, want %+v", got, want)
	}
	for name, want := range map[string]string{
		"bootcmd":    "gitfleet.slot=${gitfleet_slot}",
		"altbootcmd": "setenv upgrade_available 0; setenv bootcount 0; saveenv; run bootcmd",
	} {
		if got, _ := b.read(t).Get(name); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to hold %q", name, got, want)
		}
	}
	e, err := boot.NewEnv(b.store, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"arm B", "boot B", "fallback A", "state A", "boot A"} {
		runStep(t, b, e, c, step)
	}
	got := b.read(t)
	for _, name := range []string{"bootcmd", "altbootcmd", "gitfleet_bootargs"} {
		want, _ := sample.Get(name)
		if g, _ := got.Get(name); g != want {
			t.Errorf("%s = %q after the update, want it untouched: %q", name, g, want)
		}
	}
}
