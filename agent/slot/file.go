package slot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// A File is one opened slot: a block device or a regular file holding a
// partition image. Its size is fixed when it is opened: writes never grow
// or truncate it, and a write past the end is an error, as on a partition.
// Reads and writes go straight to the device, unbuffered, so a caller's
// large writes stay large; Sync makes them durable. A File is not safe for
// concurrent use.
type File struct {
	f     *os.File
	group string
	class string
	path  string
	size  int64
	pos   int64
}

// openFile opens the slot at path, named group/class in errors. A block
// device opened for writing is opened with O_EXCL, which Linux refuses with
// EBUSY while the device is mounted or another writer holds it exclusively.
func openFile(group, class, path string, write bool) (*File, error) {
	name := group + "/" + class
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open slot %s: %w", name, err)
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
	case m&os.ModeCharDevice != 0:
		return nil, fmt.Errorf("open slot %s: %s is a character device (MTD or UBI flash?), which needs erasing before a write: not supported", name, path)
	case m&os.ModeDevice != 0:
		if write {
			flag |= os.O_EXCL
		}
	default:
		return nil, fmt.Errorf("open slot %s: %s is not a block device or a regular file (%s)", name, path, m.Type())
	}
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, syscall.EBUSY) {
		return nil, fmt.Errorf("open slot %s: %s is in use, mounted or opened by another writer: %w", name, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open slot %s: %w", name, err)
	}
	// Seeking to the end gives the size of a block device and of a file
	// alike.
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open slot %s: size of %s: %w", name, path, err)
	}
	return &File{f: f, group: group, class: class, path: path, size: size}, nil
}

// Read reads from the current offset. At the end of the slot it returns
// io.EOF.
func (s *File) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.pos += int64(n)
	return n, err
}

// Write writes p at the current offset. If p runs past the end of the slot,
// Write writes what fits and returns an error saying so.
func (s *File) Write(p []byte) (int, error) {
	room := max(s.size-s.pos, 0)
	fits := p
	if int64(len(p)) > room {
		fits = p[:room]
	}
	n, err := s.f.Write(fits)
	s.pos += int64(n)
	if err != nil {
		return n, fmt.Errorf("write slot %s: %w", s, err)
	}
	if n < len(p) {
		return n, fmt.Errorf("write slot %s: %d bytes at offset %d run past the end of the slot at %d bytes", s, len(p), s.pos-int64(n), s.size)
	}
	return n, nil
}

// Seek sets the offset of the next Read or Write, as io.Seeker says.
func (s *File) Seek(offset int64, whence int) (int64, error) {
	pos, err := s.f.Seek(offset, whence)
	if err != nil {
		return pos, fmt.Errorf("seek slot %s: %w", s, err)
	}
	s.pos = pos
	return pos, nil
}

// Sync flushes what was written to the device (fsync).
func (s *File) Sync() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync slot %s: %w", s, err)
	}
	return nil
}

// Close closes the slot. It does not sync.
func (s *File) Close() error { return s.f.Close() }

// Size returns the size of the slot in bytes: of the block device, or of the
// image file when it was opened.
func (s *File) Size() (int64, error) { return s.size, nil }

// Path returns the slot's device or file.
func (s *File) Path() string { return s.path }

// String returns the slot's group and class, as in B/rootfs.
func (s *File) String() string { return s.group + "/" + s.class }
