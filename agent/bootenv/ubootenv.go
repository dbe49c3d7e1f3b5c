package bootenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// FwPrintenvLock is the lock file that libubootenv's fw_printenv and
// fw_setenv hold with flock(LOCK_EX) for the whole of every call, whatever
// device their configuration names. Taking it too keeps the agent and an
// operator's fw_setenv from interleaving a read-modify-write; the lock on the
// device itself keeps out tools that take only that.
const FwPrintenvLock = "/var/lock/fw_printenv.lock"

// UBootEnv is a U-Boot environment on block devices or regular files, where
// an fw_env.config says it is. Each method opens, locks, reads or writes and
// closes the devices, so a UBootEnv holds no resources and may be shared.
//
// A write goes to the copy U-Boot is not using, with the flags byte one
// higher, and is fsynced before the method returns, so a power cut during it
// leaves the old environment in force. A single-copy environment has no such
// guarantee: it is rewritten in place.
//
// An eMMC boot partition's write protection is lifted for the write and
// restored after it, as libubootenv does. MTD and UBI character devices (raw
// NOR or NAND flash, which need erasing before a write and use another flags
// scheme on NOR) are not supported.
type UBootEnv struct {
	// Config locates the copies.
	Config FwEnvConfig
	// LockFile is flocked around every access, before the devices are. It
	// is FwPrintenvLock after NewUBootEnv; empty takes no global lock, for
	// tests and for a virtual board that has no fw_printenv to coordinate
	// with.
	LockFile string
}

// NewUBootEnv returns the environment that config locates, coordinating
// with fw_printenv and fw_setenv through FwPrintenvLock.
func NewUBootEnv(config FwEnvConfig) *UBootEnv {
	return &UBootEnv{Config: config, LockFile: FwPrintenvLock}
}

// Read returns the variables of the copy U-Boot would use. If no copy is
// valid, the error wraps ErrCorrupt and says what is wrong with each copy.
func (e *UBootEnv) Read(ctx context.Context) (*Vars, error) {
	s, copies, err := e.load(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read U-Boot environment: %w", err)
	}
	defer s.close()
	v, _, _, err := s.current(copies)
	if err != nil {
		return nil, fmt.Errorf("read U-Boot environment: %w", err)
	}
	return v, nil
}

// Update reads the environment, lets fn change the variables, and writes
// them back, all under the locks, so no other process's change in between is
// lost. If fn returns an error nothing is written. If no copy is valid,
// Update returns an error wrapping ErrCorrupt without calling fn: a caller
// that means to start over from its defaults says so with Write.
func (e *UBootEnv) Update(ctx context.Context, fn func(*Vars) error) error {
	s, copies, err := e.load(ctx, true)
	if err != nil {
		return fmt.Errorf("update U-Boot environment: %w", err)
	}
	defer s.close()
	v, active, flags, err := s.current(copies)
	if err != nil {
		return fmt.Errorf("update U-Boot environment: %w", err)
	}
	if err := fn(v); err != nil {
		return fmt.Errorf("update U-Boot environment: %w", err)
	}
	return s.write(active, flags, true, v)
}

// Write replaces the whole environment with v, whether or not a valid copy
// exists: it is how a caller starts over from defaults after ErrCorrupt.
func (e *UBootEnv) Write(ctx context.Context, v *Vars) error {
	s, copies, err := e.load(ctx, true)
	if err != nil {
		return fmt.Errorf("write U-Boot environment: %w", err)
	}
	defer s.close()
	active, ok := s.layout.active(copies)
	var flags uint8
	if ok {
		flags, _ = s.layout.valid(copies[active])
	}
	return s.write(active, flags, ok, v)
}

// ubootSession is an open, locked environment.
type ubootSession struct {
	layout UBootLayout
	lock   *os.File
	files  []*os.File
	copies []ubootCopy
}

// ubootCopy is where one copy is.
type ubootCopy struct {
	index   int
	file    *os.File
	device  string
	offset  int64 // resolved: never negative
	regular bool  // a regular file, which may be shorter than the copy
}

func (c ubootCopy) String() string {
	return fmt.Sprintf("copy %d (%s at %#x)", c.index, c.device, c.offset)
}

// open validates the configuration, takes the global lock, then opens and
// locks each device. Devices are locked in path order so that two processes
// with the same devices in different configurations cannot deadlock.
func (e *UBootEnv) open(ctx context.Context, write bool) (_ *ubootSession, err error) {
	if err := e.Config.Validate(); err != nil {
		return nil, err
	}
	s := &ubootSession{layout: e.Config.Layout()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if e.LockFile != "" {
		if s.lock, err = lockFile(ctx, e.LockFile); err != nil {
			return nil, err
		}
	}
	devices := make([]string, 0, len(e.Config.Copies))
	for _, cp := range e.Config.Copies {
		devices = append(devices, cp.Device)
	}
	slices.Sort(devices)
	devices = slices.Compact(devices)
	byDevice := make(map[string]*os.File, len(devices))
	for _, dev := range devices {
		f, err := openDevice(ctx, dev, write)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, f)
		byDevice[dev] = f
	}
	for i, cp := range e.Config.Copies {
		c := ubootCopy{index: i, file: byDevice[cp.Device], device: cp.Device, offset: cp.Offset}
		fi, err := c.file.Stat()
		if err != nil {
			return nil, err
		}
		c.regular = fi.Mode().IsRegular()
		if c.offset < 0 {
			end, err := c.file.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, fmt.Errorf("find the end of %s: %w", cp.Device, err)
			}
			if c.offset += end; c.offset < 0 {
				return nil, fmt.Errorf("copy %d: OFFSET -%#x is before the start of %s (%#x bytes)", i, -cp.Offset, cp.Device, end)
			}
		}
		s.copies = append(s.copies, c)
	}
	return s, nil
}

// load opens and locks the environment and reads every copy.
func (e *UBootEnv) load(ctx context.Context, write bool) (*ubootSession, [][]byte, error) {
	s, err := e.open(ctx, write)
	if err != nil {
		return nil, nil, err
	}
	copies, err := s.readCopies()
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, copies, nil
}

// openDevice opens and flocks a device or file that holds a copy.
func openDevice(ctx context.Context, path string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	// Never O_CREATE: a mistyped /dev path must fail, not become a file.
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.Mode()&os.ModeCharDevice != 0:
		err = fmt.Errorf("%s is a character device (MTD or UBI flash), which is not supported: use a block device or file", path)
	case !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0:
		err = fmt.Errorf("%s is not a block device or regular file (mode %v)", path, fi.Mode())
	}
	if err == nil {
		err = flock(ctx, f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s *ubootSession) close() {
	for _, f := range s.files {
		f.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// readCopies reads every copy. A copy past the end of a regular file is
// returned as nil, an invalid copy, so that a new, empty file can be written.
func (s *ubootSession) readCopies() ([][]byte, error) {
	copies := make([][]byte, len(s.copies))
	for i, c := range s.copies {
		b := make([]byte, s.layout.Size)
		_, err := c.file.ReadAt(b, c.offset)
		switch {
		case errors.Is(err, io.EOF) && c.regular:
			// Invalid, like erased flash.
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("read %s: the device ends before the copy's %#x bytes", c, s.layout.Size)
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", c, err)
		default:
			copies[i] = b
		}
	}
	return copies, nil
}

// current decodes the active copy and returns its variables, index and
// flags byte.
func (s *ubootSession) current(copies [][]byte) (v *Vars, active int, flags uint8, err error) {
	active, ok := s.layout.active(copies)
	if !ok {
		return nil, 0, 0, s.corrupt(copies)
	}
	v, flags, err = s.layout.Unmarshal(copies[active])
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", s.copies[active], err)
	}
	return v, active, flags, nil
}

// corrupt returns an error wrapping ErrCorrupt that says what is wrong with
// each copy.
func (s *ubootSession) corrupt(copies [][]byte) error {
	var why []string
	for i, c := range s.copies {
		if copies[i] == nil {
			why = append(why, fmt.Sprintf("%s is past the end of the file", c))
		} else {
			why = append(why, fmt.Sprintf("%s has a bad CRC", c))
		}
	}
	return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(why, "; "))
}

// write encodes v into the copy that is not active, with the flags byte one
// higher than the active copy's (wrapping from 255 to 0), and fsyncs it.
// Only the bytes of that copy are written: the active copy stays valid until
// the new one is complete, whatever instant power is cut. Without a valid
// copy the first copy is written, with flags 1 as mkenvimage -r writes.
func (s *ubootSession) write(active int, activeFlags uint8, activeValid bool, v *Vars) error {
	target, flags := 0, uint8(1)
	if s.layout.Redundant && activeValid {
		target, flags = 1-active, activeFlags+1
	}
	b, err := s.layout.Marshal(v, flags)
	if err != nil {
		return fmt.Errorf("write U-Boot environment: %w", err)
	}
	// fw_printenv fails unless it can read every copy in full: grow a
	// short file before writing into it. Growing writes no byte of the
	// active copy.
	for _, c := range s.copies {
		if !c.regular {
			continue
		}
		fi, err := c.file.Stat()
		if err != nil {
			return fmt.Errorf("write U-Boot environment %s: %w", c, err)
		}
		if end := c.offset + int64(s.layout.Size); fi.Size() < end {
			if err := c.file.Truncate(end); err != nil {
				return fmt.Errorf("write U-Boot environment: grow %s: %w", c, err)
			}
			if err := c.file.Sync(); err != nil {
				return fmt.Errorf("write U-Boot environment: fsync %s: %w", c, err)
			}
		}
	}
	c := s.copies[target]
	restore, err := unlockBootPartition(c.device)
	if err != nil {
		return fmt.Errorf("write U-Boot environment %s: %w", c, err)
	}
	defer restore()
	if _, err := c.file.WriteAt(b, c.offset); err != nil {
		return fmt.Errorf("write U-Boot environment %s: %w", c, err)
	}
	if err := c.file.Sync(); err != nil {
		return fmt.Errorf("write U-Boot environment: fsync %s: %w", c, err)
	}
	return nil
}
