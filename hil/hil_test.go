package hil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/hil/junit"
)

// buildBinaries builds gitfleet-agent, gitfleet-hil and gitfleet-server
// into a temp dir.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/gitfleet-agent", "../cmd/gitfleet-hil", "../cmd/gitfleet-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

// startVBoard starts `gitfleet-hil vboard` as its own process, as a rig of
// real boards would have them, its agent reporting to srv, and returns its
// console and control paths.
func startVBoard(t *testing.T, bin, dir, id, root string, srv *embeddedServer) (string, string) {
	t.Helper()
	tty, sock := filepath.Join(dir, id+".tty"), filepath.Join(dir, id+".sock")
	cmd := exec.Command(filepath.Join(bin, "gitfleet-hil"), "vboard", "--dir", filepath.Join(dir, id),
		"--agent", filepath.Join(bin, "gitfleet-agent"), "--device-id", id, "--device-type", "gitfleet-vboard",
		"--root", root, "--console", tty, "--control", sock, "--watchdog", "500ms", "--kernel-delay", "100ms",
		"--fleet", embeddedFleet, "--broker", srv.Broker, "--mqtt-password-file", srv.Passwords[id])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("vboard %s: %v\n%s", id, err, stderr.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, errT := os.Stat(tty)
		_, errS := os.Stat(sock)
		if errT == nil && errS == nil {
			return tty, sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("vboard %s made no console and control socket in 10s:\n%s", id, stderr.String())
		}
	}
}

// TestShortPlan is what make test runs of the HIL: two virtual boards, each
// its own gitfleet-hil vboard process whose agent reports to a
// gitfleet-server, driven by gitfleet-hil run through their consoles and
// control sockets with the shipped short plan: update, bad signature,
// downgrade, broken image and health check rollbacks, power cuts during the
// write and the first boot. The rig names the server as one of real boards
// would, so every scenario also checks what its fleet status API reports.
// The JUnit report must be valid and every case pass, and each board and
// scenario have a console log.
func TestShortPlan(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.Mkdir(keys, 0o700)
	s, err := loadSigners(context.Background(), nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	boards := []string{"vboard-1", "vboard-2"}
	srv, err := startServer(context.Background(), filepath.Join(bin, "gitfleet-server"), filepath.Join(dir, "server"),
		filepath.Join(dir, "server.log"), boards)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped after the boards (cleanups run last first).
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	var rig strings.Builder
	fmt.Fprintf(&rig, "server: {api: %s, token_file: %s}\ntrust:\n  root: %s\n  key: %s\nboards:\n",
		srv.API, srv.TokenFile, s.root, filepath.Join(keys, "targets.key"))
	for _, id := range boards {
		tty, sock := startVBoard(t, bin, dir, id, s.root, srv)
		fmt.Fprintf(&rig, "  - name: %s\n    device: {id: %s, type: gitfleet-vboard}\n    console: {port: %s, baud: 115200}\n"+
			"    power: {type: vboard, socket: %s}\n    timeouts: {boot: 10s, install: 1m, settle: 10s}\n", id, id, tty, sock)
	}
	rigPath := filepath.Join(dir, "rig.yaml")
	os.WriteFile(rigPath, []byte(rig.String()), 0o644)
	plan, err := LoadPlan("plans/short.yaml")
	if err != nil {
		t.Fatal(err)
	}

	report, logs := filepath.Join(dir, "report.xml"), filepath.Join(dir, "logs")
	cmd := exec.Command(filepath.Join(bin, "gitfleet-hil"), "run", "--rig", rigPath, "--plan", "plans/short.yaml",
		"--junit", report, "--logs", logs)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("gitfleet-hil run:\n%s%s", stdout.String(), stderr.String())

	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	r, err := junit.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Tests, len(boards)*(1+len(plan.Scenarios)); got != want {
		t.Errorf("report has %d test cases, want %d", got, want)
	}
	for _, su := range r.Suites {
		for i, c := range su.Cases {
			if c.Failure != nil {
				t.Errorf("%s: %s: %s\n%s", su.Name, c.Name, c.Failure.Message, c.Failure.Text)
			}
			log := filepath.Join(logs, su.Name, fmt.Sprintf("%03d-%s.log", i+1, slug(c.Name)))
			if st, err := os.Stat(log); err != nil || st.Size() == 0 {
				t.Errorf("%s: %s: no console log %s", su.Name, c.Name, log)
			}
		}
	}
	// The exit status says whether anything failed, and the last line of
	// the output counts the cases, so CI logs read like go test's.
	var ee *exec.ExitError
	switch {
	case r.Failures == 0 && runErr != nil:
		t.Errorf("gitfleet-hil run: %v, want success", runErr)
	case r.Failures > 0 && !errors.As(runErr, &ee):
		t.Errorf("gitfleet-hil run with failures: err = %v, want a non-zero exit", runErr)
	case r.Failures > 0 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0:
		t.Errorf("gitfleet-hil run with failures: stderr is not one line: %q", stderr.String())
	}
	if want := fmt.Sprintf("%d passed, %d failed\n", r.Tests-r.Failures, r.Failures); !strings.HasSuffix(stdout.String(), want) {
		t.Errorf("output ends %q, want %q", lastLine(stdout.String()), want)
	}
}

// TestFailingPlan runs a plan that fails on a virtual board the runner
// starts itself (throwaway keys), reporting to a server the runner starts:
// the first boot passes, checked on the fleet API too; the report records
// the failure with its reason, and gitfleet-hil exits non-zero with one
// line.
func TestFailingPlan(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	rig := filepath.Join(dir, "rig.yaml")
	os.WriteFile(rig, []byte(fmt.Sprintf("server: {embedded: {binary: %s}}\nboards:\n  - name: vb\n    device: {id: vb, type: gitfleet-vboard}\n    virtual: {agent: %s}\n",
		filepath.Join(bin, "gitfleet-server"), filepath.Join(bin, "gitfleet-agent"))), 0o644)
	plan := filepath.Join(dir, "plan.yaml")
	// A fresh board runs counter 0: nothing is below it to refuse.
	os.WriteFile(plan, []byte("releases:\n  - {version: 1.3.0, counter: 13, image: {kind: healthy, size: 4KiB}}\n"+
		"scenarios:\n  - {type: downgrade, release: 1.3.0}\n"), 0o644)
	report := filepath.Join(dir, "report.xml")
	cmd := exec.Command(filepath.Join(bin, "gitfleet-hil"), "run", "--rig", rig, "--plan", plan, "--junit", report, "--logs", filepath.Join(dir, "logs"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Fatalf("gitfleet-hil run: err = %v, stderr %q: want a non-zero exit and one line", err, stderr.String())
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	r, err := junit.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tests != 2 || r.Failures != 1 {
		t.Fatalf("report: %d tests, %d failures; want 2 and 1", r.Tests, r.Failures)
	}
	if f := r.Suites[0].Cases[1].Failure; f == nil || !strings.Contains(f.Message, "the board runs counter 0, not above 1.3.0's 13") {
		t.Errorf("failure: %+v", f)
	}
	if !strings.HasSuffix(stdout.String(), "1 passed, 1 failed\n") {
		t.Errorf("output ends %q, want %q", lastLine(stdout.String()), "1 passed, 1 failed")
	}
}
