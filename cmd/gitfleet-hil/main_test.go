package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitfleet-hil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestHelp checks every command answers --help and exits 0.
func TestHelp(t *testing.T) {
	bin := build(t)
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"vboard", "--help"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("gitfleet-hil %v: %v\n%s", args, err, out)
		}
	}
}

// TestErrorsAreOneLine checks that a failing command exits non-zero with
// one line on stderr that names what is wrong.
func TestErrorsAreOneLine(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	rig := filepath.Join(dir, "rig.yaml")
	os.WriteFile(rig, []byte("server: {api: http://127.0.0.1:1, token_file: token}\nboards:\n  - name: vb\n    device: {id: vb, type: t}\n    power: {type: usb}\n"), 0o644)
	plan := filepath.Join(dir, "plan.yaml")
	os.WriteFile(plan, []byte("scenarios: []\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"missing flags", []string{"run"}, "--rig and --plan are required"},
		{"bad rig", []string{"run", "--rig", rig, "--plan", plan}, rig + ":3: boards[0].console.port: set the serial port"},
		{"vboard without dir", []string{"vboard", "--device-id", "x"}, "vboard: dir:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = dir // no gitfleet-agent beside the binary or here
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0, want a failure: %s", out)
			}
			if got := strings.TrimSpace(string(out)); strings.Count(got, "\n") != 0 || !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want one line saying %q", got, tc.want)
			}
		})
	}
}
