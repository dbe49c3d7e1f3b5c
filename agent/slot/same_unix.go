//go:build unix

package slot

import (
	"os"
	"syscall"
)

// sameDevice reports whether a and b are the same file, or device nodes of
// the same device: two nodes for one block device have their own inodes, so
// os.SameFile alone would miss them.
func sameDevice(a, b os.FileInfo) bool {
	if os.SameFile(a, b) {
		return true
	}
	const kind = os.ModeDevice | os.ModeCharDevice
	if a.Mode()&os.ModeDevice == 0 || a.Mode()&kind != b.Mode()&kind {
		return false
	}
	sa, ok := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok && ok2 && uint64(sa.Rdev) == uint64(sb.Rdev)
}
