// Package ptytest gives tests linked pairs of pseudo-terminals, made by
// socat: what one side writes the other reads, as over a null-modem cable
// between two USB-serial adapters.
package ptytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

// Pair starts socat with a linked pair of raw pseudo-terminals and returns
// their paths. socat is stopped when the test ends.
func Pair(t testing.TB) (string, string) {
	t.Helper()
	socat := testenv.Tool(t, "socat")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(socat, "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, errA := os.Stat(a)
		_, errB := os.Stat(b)
		if errA == nil && errB == nil {
			return a, b
		}
		if time.Now().After(deadline) {
			t.Fatal("socat made no pseudo-terminals in 5s")
		}
	}
}
