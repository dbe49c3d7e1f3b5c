package boot_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/boot"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScript(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	record := script(t, dir, "record.sh", `echo "$*" >> "`+log+`"; echo ignored output`+"\n")
	s, err := boot.NewScript(boot.Commands{
		Arm:    []string{record, "arm", "--quiet"},
		Commit: []string{record, "commit"},
		Revert: []string{record, "revert"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return s.Arm("B") },
		func() error { return s.Commit("B") },
		func() error { return s.Revert("A") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Arm("C"); err == nil || !strings.Contains(err.Error(), `unknown slot group "C"`) {
		t.Errorf("Arm(C) = %v, want an error about the group", err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "arm --quiet B\ncommit B\nrevert A\n"; got != want {
		t.Errorf("the commands ran as %q, want %q", got, want)
	}
}

func TestScriptFailures(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		// want are the parts the error must hold, in order.
		want []string
	}{
		{
			name: "exit status and stderr",
			body: "echo 'fw_setenv: cannot open /dev/mmcblk0boot1' >&2\nexit 3\n",
			want: []string{"arm group B: ", "fail.sh B: exit status 3; stderr: ", `"fw_setenv: cannot open /dev/mmcblk0boot1"`},
		},
		{
			name: "long stderr: its tail",
			body: "i=0; while [ $i -lt 200 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1\n",
			want: []string{"exit status 1; stderr: \"…", `line 199"`},
		},
		{
			name: "no stderr",
			body: "exit 2\n",
			want: []string{"exit status 2"},
		},
		{
			name:    "timeout kills the command and its children",
			body:    "sleep 60 &\necho $! > " + pidFile + "\necho started >&2\nwait\n",
			timeout: 200 * time.Millisecond,
			want:    []string{"timed out after 200ms; stderr: \"started\""},
		},
		{
			name: "missing program",
			want: []string{"missing.sh B: ", "no such file or directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := filepath.Join(dir, "missing.sh")
			if tt.body != "" {
				prog = script(t, t.TempDir(), "fail.sh", tt.body)
			}
			ok := script(t, t.TempDir(), "ok.sh", "exit 0\n")
			s, err := boot.NewScript(boot.Commands{Arm: []string{prog}, Commit: []string{ok}, Revert: []string{ok}, Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Arm("B")
			if err == nil {
				t.Fatal("Arm succeeded, want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			rest := msg
			for _, part := range tt.want {
				i := strings.Index(rest, part)
				if i < 0 {
					t.Fatalf("error %q does not hold %q (in order)", msg, part)
				}
				rest = rest[i+len(part):]
			}
		})
	}
	// The timed-out script's child was killed with it.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out script's child %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombie reports whether pid has exited but not been reaped (its parent, the
// script, was killed, and init reaps it when it gets to it).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}

func TestCommandsValidate(t *testing.T) {
	ok := []string{"/bin/true"}
	tests := []struct {
		name    string
		c       boot.Commands
		wantErr string
	}{
		{name: "valid", c: boot.Commands{Arm: ok, Commit: ok, Revert: ok, Timeout: time.Minute}},
		{name: "no arm", c: boot.Commands{Commit: ok, Revert: ok}, wantErr: "arm is empty"},
		{name: "empty program", c: boot.Commands{Arm: ok, Commit: []string{""}, Revert: ok}, wantErr: "commit is empty"},
		{name: "no revert", c: boot.Commands{Arm: ok, Commit: ok}, wantErr: "revert is empty"},
		{name: "negative timeout", c: boot.Commands{Arm: ok, Commit: ok, Revert: ok, Timeout: -time.Second}, wantErr: "timeout is -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := boot.NewScript(tt.c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewScript() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewScript() = %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}
