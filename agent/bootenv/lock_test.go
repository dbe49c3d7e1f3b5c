package bootenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUBootEnvLockHonoursContext(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "uboot.env")
	if err := os.WriteFile(image, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := &UBootEnv{
		Config:   FwEnvConfig{Copies: []FwEnvCopy{{Device: image, Size: 0x1000}}},
		LockFile: filepath.Join(dir, "fw_printenv.lock"),
	}
	var v Vars
	v.set("a", "1")
	if err := e.Write(t.Context(), &v); err != nil {
		t.Fatal(err)
	}

	// A second open file description conflicts with the first, as another
	// process's would.
	held, err := lockFile(t.Context(), e.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = e.Read(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "held by another process") {
		t.Errorf("Read() while the lock is held: error = %v, want a deadline error", err)
	}
	held.Close()
	if _, err := e.Read(t.Context()); err != nil {
		t.Errorf("Read() after the lock was released: %v", err)
	}
}
