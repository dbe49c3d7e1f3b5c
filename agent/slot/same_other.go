//go:build !unix

package slot

import "os"

// sameDevice reports whether a and b are the same file.
func sameDevice(a, b os.FileInfo) bool { return os.SameFile(a, b) }
