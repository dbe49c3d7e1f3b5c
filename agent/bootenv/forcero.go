package bootenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// sysClassBlock is where Linux lists block devices; tests point it elsewhere.
var sysClassBlock = "/sys/class/block"

// unlockBootPartition lifts the kernel's write protection from an eMMC boot
// partition (mmcblkXbootY), which Linux turns on by default, as libubootenv
// does before writing. The returned function turns it back on; it does
// nothing if the device is not a boot partition or was already writable.
func unlockBootPartition(device string) (restore func(), err error) {
	noop := func() {}
	if resolved, err := filepath.EvalSymlinks(device); err == nil {
		device = resolved
	}
	name := filepath.Base(device)
	if !isBootPartition(name) {
		return noop, nil
	}
	path := filepath.Join(sysClassBlock, name, "force_ro")
	cur, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return noop, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read write protection of %s: %w", device, err)
	}
	if strings.TrimSpace(string(cur)) == "0" {
		return noop, nil
	}
	if err := os.WriteFile(path, []byte("0"), 0); err != nil {
		return nil, fmt.Errorf("lift write protection of %s: %w", device, err)
	}
	// Restoring is best effort, as in libubootenv: the write has already
	// succeeded or failed, and the kernel protects the partition again at
	// the next boot.
	return func() { os.WriteFile(path, []byte("1"), 0) }, nil
}

// isBootPartition reports whether name is an eMMC boot partition's device
// name, mmcblk<N>boot<M>.
func isBootPartition(name string) bool {
	rest, ok := strings.CutPrefix(name, "mmcblk")
	if !ok {
		return false
	}
	disk, part, ok := strings.Cut(rest, "boot")
	return ok && isDigits(disk) && isDigits(part)
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
