package system_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/system"
)

func TestBootIDAndReboot(t *testing.T) {
	dir := t.TempDir()
	idFile := filepath.Join(dir, "boot_id")
	os.WriteFile(idFile, []byte("6f1c\n"), 0o644)
	marker := filepath.Join(dir, "rebooted")
	s := &system.System{BootIDFile: idFile, RebootCommand: []string{"touch", marker}}
	if id, err := s.BootID(); err != nil || id != "6f1c" {
		t.Fatalf("BootID = %q, %v", id, err)
	}
	if err := s.Reboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("reboot command did not run")
	}
	s.RebootCommand = []string{"sh", "-c", "echo no permission >&2; exit 1"}
	if err := s.Reboot(context.Background()); err == nil || !strings.Contains(err.Error(), "no permission") {
		t.Errorf("failing reboot: err = %v", err)
	}
	// The real boot id exists on Linux.
	if id, err := (&system.System{}).BootID(); err != nil || len(id) < 8 {
		t.Errorf("real boot id = %q, %v", id, err)
	}
}
