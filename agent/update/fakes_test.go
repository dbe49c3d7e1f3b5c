package update_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitfleet/gitfleet/agent/update"
)

// device is an in-process device: two slot groups of files, a bootloader
// with U-Boot's boot-count semantics in memory, and a boot id that changes
// on every reboot.
type device struct {
	t    *testing.T
	dir  string
	size int64

	mu sync.Mutex
	// bootloader state
	dflt      string // default group
	trial     string // group to try once, "" if none
	bootcount int
	bootlimit int
	// running system
	booted  string
	bootN   int
	reboots int
	// newBootsHang makes the next boots of the trial group fail, as a
	// kernel that never comes up would.
	newBootsHang bool
}

func newDevice(t *testing.T, size int64) *device {
	d := &device{t: t, dir: t.TempDir(), size: size, dflt: "A", booted: "A", bootlimit: 2}
	for _, g := range []string{"A", "B"} {
		for _, c := range []string{"rootfs", "boot"} {
			b := make([]byte, size)
			for i := range b {
				b[i] = g[0]
			}
			if err := os.WriteFile(d.path(g, c), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

func (d *device) path(group, class string) string {
	return filepath.Join(d.dir, group+"-"+class+".img")
}

// Slots

func (d *device) Booted() (string, error) { d.mu.Lock(); defer d.mu.Unlock(); return d.booted, nil }

func (d *device) Other(g string) (string, error) {
	switch g {
	case "A":
		return "B", nil
	case "B":
		return "A", nil
	}
	return "", fmt.Errorf("no group %q", g)
}

func (d *device) Open(group, class string, write bool) (update.Slot, error) {
	if write && group == d.booted {
		return nil, fmt.Errorf("refusing to write the running group %s", group)
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_WRONLY
	}
	f, err := os.OpenFile(d.path(group, class), flag, 0)
	if err != nil {
		return nil, err
	}
	return fileSlot{f}, nil
}

type fileSlot struct{ *os.File }

func (s fileSlot) Size() (int64, error) {
	fi, err := s.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Bootloader

func (d *device) Arm(g string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trial, d.bootcount = g, 0
	return nil
}
func (d *device) Commit(g string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dflt, d.trial = g, ""
	return nil
}
func (d *device) Revert(g string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dflt, d.trial = g, ""
	return nil
}

// System

func (d *device) BootID() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("boot-%d", d.bootN), nil
}

func (d *device) Reboot(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reboots++
	return nil
}

// powerOn boots the device as U-Boot would: a pending trial is tried while
// the boot count stays within the limit; past it, the default boots.
func (d *device) powerOn() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bootN++
	for {
		if d.trial != "" {
			d.bootcount++
			if d.bootcount <= d.bootlimit {
				if d.newBootsHang {
					continue // the kernel hung; the watchdog resets the board
				}
				d.booted = d.trial
				return
			}
			d.trial = ""
		}
		d.booted = d.dflt
		return
	}
}

func (d *device) bootState() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("default=%s trial=%s", d.dflt, d.trial)
}

// reports records reports, dropping a sequence number it already holds,
// as the outbox does.
type reports struct {
	mu   sync.Mutex
	list []update.Report
}

func (r *reports) Report(_ context.Context, rep update.Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.list {
		if have.Seq == rep.Seq && have.StreamID == rep.StreamID {
			if have.To != rep.To {
				return fmt.Errorf("sequence %d reported as %s, then as %s", rep.Seq, have.To, rep.To)
			}
			return nil
		}
	}
	r.list = append(r.list, rep)
	return nil
}

// check verifies the reports form one unbroken sequence from 1 and returns
// the states they went through.
func (r *reports) check(t *testing.T) []update.State {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var states []update.State
	for i, rep := range r.list {
		if rep.Seq != uint64(i+1) {
			t.Fatalf("report %d has sequence %d: gap or duplicate", i, rep.Seq)
		}
		states = append(states, rep.To)
	}
	return states
}

type health struct{ err error }

func (h health) Check(context.Context) error { return h.err }

var errHealth = errors.New("service acme-gw.service is not active")
