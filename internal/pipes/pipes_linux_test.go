package pipes_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitfleet/gitfleet/internal/pipes"
)

func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rc.Control(func(fd uintptr) { n, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("F_GETPIPE_SZ: %v", err)
	}
	return n
}

func TestWidenGrowsAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if n := pipeSize(t, r); n >= pipes.Size {
		t.Fatalf("a new pipe already holds %d bytes; the test shows nothing", n)
	}
	pipes.Widen(r)
	if n := pipeSize(t, r); n != pipes.Size {
		t.Fatalf("pipe holds %d bytes after Widen, want %d", n, pipes.Size)
	}
	// Still a working, non-blocking pipe for the runtime's poller.
	if _, err := w.Write([]byte("chunk")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := r.Read(buf); err != nil || string(buf) != "chunk" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestWidenLeavesFilesAlone(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pipes.Widen(f) // must neither fail nor touch a regular file
	pipes.Widen(nil)
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("file after Widen: %v, %v", fi, err)
	}
}
