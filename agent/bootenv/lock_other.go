//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package bootenv

import (
	"errors"
	"os"
)

// tryFlock fails: this system has no flock.
func tryFlock(f *os.File) (held bool, err error) {
	return false, errors.ErrUnsupported
}
