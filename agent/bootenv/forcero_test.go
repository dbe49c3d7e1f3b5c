package bootenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsBootPartition(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"mmcblk0boot0", true},
		{"mmcblk12boot1", true},
		{"mmcblk0", false},
		{"mmcblk0p1", false},
		{"mmcblkboot0", false},
		{"mmcblk0boot", false},
		{"mmcblk0boot0p1", false},
		{"sda", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isBootPartition(tt.name); got != tt.want {
				t.Errorf("isBootPartition(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestUBootEnvLiftsBootPartitionProtection writes to a file named like an
// eMMC boot partition, with a fake sysfs that says it is protected.
func TestUBootEnvLiftsBootPartitionProtection(t *testing.T) {
	dir := t.TempDir()
	sysfs := filepath.Join(dir, "sys")
	forceRO := filepath.Join(sysfs, "mmcblk0boot1", "force_ro")
	if err := os.MkdirAll(filepath.Dir(forceRO), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forceRO, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(old string) { sysClassBlock = old }(sysClassBlock)
	sysClassBlock = sysfs

	device := filepath.Join(dir, "mmcblk0boot1")
	if err := os.WriteFile(device, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	restore, err := unlockBootPartition(device)
	if err != nil {
		t.Fatal(err)
	}
	if got := readForceRO(t, forceRO); got != "0" {
		t.Errorf("force_ro while writing = %q, want 0", got)
	}
	restore()
	if got := readForceRO(t, forceRO); got != "1" {
		t.Errorf("force_ro after writing = %q, want 1", got)
	}

	e := &UBootEnv{Config: FwEnvConfig{Copies: []FwEnvCopy{{Device: device, Size: 0x1000}}}}
	var v Vars
	v.set("a", "1")
	if err := e.Write(t.Context(), &v); err != nil {
		t.Fatal(err)
	}
	if got := readForceRO(t, forceRO); got != "1" {
		t.Errorf("force_ro after Write = %q, want 1", got)
	}

	// A partition already writable stays so.
	if err := os.WriteFile(forceRO, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Write(t.Context(), &v); err != nil {
		t.Fatal(err)
	}
	if got := readForceRO(t, forceRO); got != "0\n" {
		t.Errorf("force_ro of a writable partition after Write = %q, want it untouched", got)
	}
}

func readForceRO(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
