package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
)

// board is a device in a temp dir: two slot groups of files, a variables
// file as its bootloader environment, a kernel command line and a boot id
// that the test rewrites at each "boot".
type board struct {
	dir, config, cmdline, bootID, env string
	boots                             int
}

func newBoard(t *testing.T, tr *bundletest.Trust) *board {
	dir := t.TempDir()
	b := &board{dir: dir, config: filepath.Join(dir, "agent.yaml"), cmdline: filepath.Join(dir, "cmdline"),
		bootID: filepath.Join(dir, "boot_id"), env: filepath.Join(dir, "bootenv")}
	for _, g := range []string{"A", "B"} {
		os.WriteFile(filepath.Join(dir, g+".img"), bytes.Repeat([]byte(g), 1<<20), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "root.json"), tr.RootJSON, 0o644)
	os.WriteFile(b.config, []byte(`device:
  id: board-1
  type: acme-gw-v2
  fleet: acme
  channel: production
  labels: {ring: canary}
data_dir: data
trust:
  root: root.json
slots:
  booted: cmdline
  cmdline: cmdline
  groups:
    A: {rootfs: A.img}
    B: {rootfs: B.img}
bootloader:
  type: file
  file: bootenv
system:
  boot_id_file: boot_id
  reboot_command: ["true"]
health:
  commands:
    - name: ok
      command: ["true"]
`), 0o644)
	b.powerOn(t)
	return b
}

// powerOn does what the board's bootloader does at power-on: pick the group
// by the boot-count convention, and start the system with a new boot id.
func (b *board) powerOn(t *testing.T) {
	t.Helper()
	f := &boot.File{Path: b.env}
	var group string
	err := f.Update(context.Background(), func(v *bootenv.Vars) error {
		d, err := boot.Convention{}.PowerOn(v)
		if err != nil {
			return err
		}
		group = d.Group
		if d.Save != nil {
			*v = *d.Save
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.boots++
	os.WriteFile(b.cmdline, []byte("console=ttyS0 gitfleet.slot="+group+"\n"), 0o644)
	os.WriteFile(b.bootID, []byte(time.Now().Format(time.RFC3339Nano)+string(rune('a'+b.boots))), 0o644)
}

func (b *board) agent(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	for i, a := range args {
		if a == "CONFIG" {
			args[i] = b.config
		}
	}
	err := dispatch(context.Background(), args, &out, &errOut)
	return out.String(), err
}

func (b *board) status(t *testing.T) Status {
	t.Helper()
	out, err := b.agent(t, "status", "--config", "CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	var s Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, out)
	}
	return s
}

func TestInstallCommitAndRefusal(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newBoard(t, tr)
	img := bundletest.Image(t, 300_000, 1)
	data, _ := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: img}}, tr.Targets...)
	path := filepath.Join(t.TempDir(), "b.gfb")
	os.WriteFile(path, data, 0o644)

	out, err := b.agent(t, "install", "--config", "CONFIG", path)
	if err != nil || !strings.Contains(out, "installed 1.4.0 into slot group B; rebooting") {
		t.Fatalf("install: %q, %v", out, err)
	}
	s := b.status(t)
	if s.State != "rebooting" || s.Confirmed || s.BootedSlot != "A" || s.ActiveSlot != "B" || s.BootID == "" || s.Labels["ring"] != "canary" {
		t.Errorf("status after install = %+v", s)
	}
	b.powerOn(t)
	if cl, _ := os.ReadFile(b.cmdline); !strings.Contains(string(cl), "gitfleet.slot=B") {
		t.Fatalf("board booted %q, want B", cl)
	}
	// Armed, A ran and B was next; now B runs on trial, with a new boot id.
	if s2 := b.status(t); s2.BootedSlot != "B" || s2.ActiveSlot != "B" || s2.BootID == "" || s2.BootID == s.BootID {
		t.Errorf("status on the trial boot = %+v (before: boot id %q)", s2, s.BootID)
	}
	// Without the daemon, a manual commit is refused: health checks are
	// configured, and the update is still in "rebooting" until run resumes.
	if _, err := b.agent(t, "commit", "--config", "CONFIG"); err == nil || !strings.Contains(err.Error(), "no new release is waiting") {
		t.Errorf("commit before resume: err = %v", err)
	}

	bad := bytes.Clone(data)
	bad[len(bad)-5] ^= 1
	badPath := filepath.Join(t.TempDir(), "bad.gfb")
	os.WriteFile(badPath, bad, 0o644)
	_, err = b.agent(t, "install", "--config", "CONFIG", badPath)
	if err == nil || !strings.Contains(err.Error(), "an update is in progress") {
		t.Errorf("install during an update: err = %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ yaml, want string }{
		{"device: {id: x, type: t}\nbootloader: {type: lilo}\n", `bootloader.type: "lilo": use uboot, grub, file or script`},
		{"device: {id: x, type: t}\nunknown_field: 1\n", `agent.yaml:2: unknown_field: unknown field "unknown_field"`},
		{"device: {id: x, type: t}\ndata_dir: [a]\n", "agent.yaml:2: data_dir: want a string, got a list"},
		{"device: &d {id: x, type: t}\n", "agent.yaml:1: device: YAML anchors, aliases and merge keys are not supported"},
		{"device: {type: t}\n", "device.id: set the device's id"},
		{"device: {id: x, type: 'Bad Type'}\n", `device.type: "Bad Type"`},
		{"device: {id: x, type: t, labels: {Ring: canary}}\n",
			"agent.yaml:1: device.labels.Ring: label name: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 bytes"},
		{"device:\n  id: x\n  type: t\n  labels:\n    site: lab\n    ring: ''\n",
			"agent.yaml:6: device.labels.ring: want a label value of 1 to 128 printable characters"},
		{"device:\n  id: x\n  type: t\n  labels:\n    ring:\n", "agent.yaml:5: device.labels.ring: want a label value"},
		{"device:\n  id: x\n  type: t\n  labels:\n    site: lab\n    ring: " + strings.Repeat("v", 129) + "\n", "agent.yaml:6: device.labels.ring: want a label value"},
		{"device:\n  id: x\n  type: t\n  labels:\n    site: lab\n    \"a\\nb\": x\n", `agent.yaml:4: device.labels["a\nb"]: label name`},
		{"device:\n  id: x\n  type: t\n  labels: [ring]\n", "agent.yaml:4: device.labels: want a mapping, got a list"},
		{"device: {id: x, type: t, labels: {" + manyLabels(65) + "}}\n", "agent.yaml:1: device.labels: 65 labels: want at most 64"},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, "agent.yaml")
		os.WriteFile(p, []byte(tc.yaml), 0o644)
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: err = %v, want it to say %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("config error is not one line: %q", err)
		}
	}
}

// manyLabels returns n labels in YAML flow style.
func manyLabels(n int) string {
	var labels []string
	for i := range n {
		labels = append(labels, fmt.Sprintf("l%d: v", i))
	}
	return strings.Join(labels, ", ")
}

// TestHelp checks every command answers --help and exits 0.
func TestHelp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gitfleet-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"--help"}, {"install", "--help"}, {"status", "--help"}, {"rollback", "--help"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("gitfleet-agent %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "frobnicate").CombinedOutput()
	if err == nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("unknown command: err %v, output %q: want a non-zero exit and one line", err, out)
	}
}

// TestExampleConfigLoads keeps dist/agent.example.yaml a valid config.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("dist/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device.Type != "acme-gw-v2" || cfg.Device.Labels["site"] != "plant-3" || cfg.Bootloader.Type != "uboot" || len(cfg.Health.Commands) != 2 {
		t.Errorf("example config read as %+v", cfg)
	}
}

// TestAgentNeverImportsServer keeps the agent binary free of server code
// (STYLE.md): it runs on small devices and must stay small.
func TestAgentNeverImportsServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/gitfleet/gitfleet/cmd/gitfleet-agent", "github.com/gitfleet/gitfleet/agent/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/gitfleet/gitfleet/server") || pkg == "github.com/spf13/cobra" {
			t.Errorf("the agent imports %s", pkg)
		}
	}
}
