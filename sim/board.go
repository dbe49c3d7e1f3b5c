package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gitfleet/gitfleet/agent/update"
)

// A board is one simulated device's hardware, in memory: two slot groups,
// A and B, of one slot each per class; a bootloader with U-Boot's boot-count
// convention (a trial group is tried at most bootLimit times, then the
// default boots); and a boot id that changes at every power-on. It
// implements update.Slots, update.Bootloader and update.System.
type board struct {
	size int64 // of every slot

	mu sync.Mutex
	// Bootloader state.
	dflt, trial string
	bootcount   int
	// The running system.
	booted string
	boots  int
	// Slot contents by group and class; nil until written.
	data map[string][]byte
	// rebootAsked is set by Reboot and cleared by powerOn.
	rebootAsked bool
}

const bootLimit = 2

func newBoard(size int64) *board {
	return &board{size: size, dflt: "A", booted: "A", boots: 1, data: map[string][]byte{}}
}

func (b *board) Booted() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.booted, nil
}

func (b *board) Other(group string) (string, error) {
	switch group {
	case "A":
		return "B", nil
	case "B":
		return "A", nil
	}
	return "", fmt.Errorf("no slot group %q", group)
}

func (b *board) Open(group, class string, write bool) (update.Slot, error) {
	if _, err := b.Other(group); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if write && group == b.booted {
		return nil, fmt.Errorf("refusing to write %s/%s: the running group", group, class)
	}
	return &memSlot{b: b, key: group + "/" + class}, nil
}

// Arm, Commit and Revert follow boot.Convention: arming sets a trial and
// resets the boot count; commit and revert end the trial with a default.
func (b *board) Arm(group string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trial, b.bootcount = group, 0
	return nil
}

func (b *board) Commit(group string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dflt, b.trial = group, ""
	return nil
}

func (b *board) Revert(group string) error { return b.Commit(group) }

func (b *board) BootID() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("boot-%d", b.boots), nil
}

func (b *board) Reboot(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rebootAsked = true
	return nil
}

// powerOn boots the board as U-Boot would: a pending trial is tried while
// the boot count stays within the limit; past it, the default boots.
func (b *board) powerOn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.boots++
	b.rebootAsked = false
	if b.trial != "" {
		b.bootcount++
		if b.bootcount <= bootLimit {
			b.booted = b.trial
			return
		}
		b.trial = ""
	}
	b.booted = b.dflt
}

// slots returns the group the board runs and the one it boots next.
func (b *board) slots() (booted, active string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	active = b.dflt
	if b.trial != "" {
		active = b.trial
	}
	return b.booted, active
}

// A memSlot is an open slot of a board. Its bytes grow as they are written,
// up to the board's slot size; unwritten bytes read as zeros.
type memSlot struct {
	b   *board
	key string
	off int64
}

var errSlotFull = errors.New("write past the end of the slot")

func (s *memSlot) Read(p []byte) (int, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.off >= s.b.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.b.size-s.off)]
	d := s.b.data[s.key]
	n := 0
	if s.off < int64(len(d)) {
		n = copy(p, d[s.off:])
	}
	clear(p[n:])
	s.off += int64(len(p))
	return len(p), nil
}

func (s *memSlot) Write(p []byte) (int, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	end := s.off + int64(len(p))
	if end > s.b.size {
		return 0, errSlotFull
	}
	d := s.b.data[s.key]
	if int64(len(d)) < end {
		d = append(d, make([]byte, end-int64(len(d)))...)
	}
	copy(d[s.off:], p)
	s.b.data[s.key] = d
	s.off = end
	return len(p), nil
}

func (s *memSlot) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.b.size
	default:
		return 0, fmt.Errorf("seek: whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the slot")
	}
	s.off = offset
	return offset, nil
}

func (s *memSlot) Sync() error          { return nil }
func (s *memSlot) Close() error         { return nil }
func (s *memSlot) Size() (int64, error) { return s.b.size, nil }
