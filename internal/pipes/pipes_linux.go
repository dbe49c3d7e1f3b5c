package pipes

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

func widen(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	// Through the raw descriptor, not Fd, which would switch the file to
	// blocking mode.
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, Size) })
	}
}
