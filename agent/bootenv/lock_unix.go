//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package bootenv

import (
	"errors"
	"os"
	"syscall"
)

// tryFlock tries once to take an exclusive flock on f and reports whether
// another process holds it.
func tryFlock(f *os.File) (held bool, err error) {
	conn, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var lockErr error
	if err := conn.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return false, err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) || errors.Is(lockErr, syscall.EINTR) {
		return true, nil
	}
	return false, lockErr
}
