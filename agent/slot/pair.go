package slot

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/agent/update"
)

// The two slot groups. Their names are fixed: the bootloader scripts, the
// kernel command line and the bootloader variables all say A or B.
const (
	A = "A"
	B = "B"
)

// Other returns the group that is not group, or an error naming group if it
// is neither A nor B.
func Other(group string) (string, error) {
	switch group {
	case A:
		return B, nil
	case B:
		return A, nil
	}
	return "", fmt.Errorf("unknown slot group %q: want A or B", group)
}

// other returns the group that is not g, which is A or B.
func other(g string) string {
	if g == A {
		return B
	}
	return A
}

// How Config.Booted finds the running group, besides naming it.
const (
	BootedCmdline    = "cmdline"
	BootedBootloader = "bootloader"
)

// Config says where the slots are and how to tell which group is running.
// The zero value of each optional field means its default.
type Config struct {
	// Groups maps each group, A and B, to its slots: a slot class (rootfs,
	// boot, …) to the path of a block device (/dev/mmcblk0p2) or of a
	// regular file holding a partition image. Both groups have the same
	// classes, and no two slots share a path.
	Groups map[string]map[string]string `yaml:"groups"`
	// Booted says how the running group is found: "cmdline" (the default)
	// reads CmdlineKey from the kernel command line, "bootloader" asks the
	// bootloader backend given to New, and "A" or "B" fixes it.
	Booted string `yaml:"booted"`
	// Cmdline is the file holding the kernel command line; default
	// /proc/cmdline. The virtual board points it at a file of its own.
	Cmdline string `yaml:"cmdline"`
	// CmdlineKey is the command line parameter naming the running group;
	// default gitfleet.slot, as in gitfleet.slot=A.
	CmdlineKey string `yaml:"cmdline_key"`
}

// Validate returns an error naming the field and the fix if c does not
// describe a usable pair of slot groups.
func (c Config) Validate() error {
	if got := slices.Sorted(maps.Keys(c.Groups)); !slices.Equal(got, []string{A, B}) {
		return fmt.Errorf("slot config: groups are %v: want exactly A and B", got)
	}
	for _, g := range []string{A, B} {
		if len(c.Groups[g]) == 0 {
			return fmt.Errorf("slot config: groups.%s is empty: map each slot class to a device, as in rootfs: /dev/mmcblk0p2", g)
		}
	}
	paths := map[string]string{} // path → the slot that has it
	for _, g := range []string{A, B} {
		peer := c.Groups[other(g)]
		for _, class := range slices.Sorted(maps.Keys(c.Groups[g])) {
			name := g + "." + class
			if class == "" {
				return fmt.Errorf("slot config: groups.%s has a slot with an empty class name: name it, as in rootfs", g)
			}
			if _, ok := peer[class]; !ok {
				return fmt.Errorf("slot config: groups.%s has no %q slot but groups.%s has: give both groups the same classes", other(g), class, g)
			}
			path := c.Groups[g][class]
			if path == "" {
				return fmt.Errorf("slot config: groups.%s is empty: give a block device or an image file", name)
			}
			if prev, ok := paths[path]; ok {
				return fmt.Errorf("slot config: groups.%s and groups.%s are both %s: each slot needs a device of its own", prev, name, path)
			}
			paths[path] = name
		}
	}
	switch c.Booted {
	case "", BootedCmdline, BootedBootloader, A, B:
	default:
		return fmt.Errorf("slot config: booted is %q: want cmdline, bootloader, A or B", c.Booted)
	}
	if strings.ContainsAny(c.CmdlineKey, "= \t\n\"") {
		return fmt.Errorf("slot config: cmdline_key %q holds '=', a quote or a space: give a parameter name such as gitfleet.slot", c.CmdlineKey)
	}
	return nil
}

// A Pair is the device's two slot groups. It implements the update engine's
// Slots. Its methods may be called concurrently; the slots they open may not.
type Pair struct {
	groups map[string]map[string]string
	detect Detector
}

// bootedTimeout bounds how long Booted waits for its Detector, which may
// wait for the lock of a bootloader environment.
const bootedTimeout = 30 * time.Second

// New returns the pair of slot groups c describes. The bootloader tells the
// running group when c.Booted is "bootloader", and is not used otherwise
// (it may then be nil).
func New(c Config, bootloader Detector) (*Pair, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &Pair{groups: map[string]map[string]string{A: maps.Clone(c.Groups[A]), B: maps.Clone(c.Groups[B])}}
	switch c.Booted {
	case "", BootedCmdline:
		p.detect = Cmdline{Path: c.Cmdline, Key: c.CmdlineKey}
	case BootedBootloader:
		if bootloader == nil {
			return nil, fmt.Errorf("slot config: booted is bootloader, but the bootloader backend cannot tell the running group: use cmdline or a fixed group")
		}
		p.detect = bootloader
	default:
		p.detect = Fixed(c.Booted)
	}
	return p, nil
}

// Booted returns the group the running system booted from, as its Detector
// says, and an error if that is neither A nor B.
func (p *Pair) Booted() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bootedTimeout)
	defer cancel()
	g, err := p.detect.Booted(ctx)
	if err != nil {
		return "", fmt.Errorf("find the running slot group: %w", err)
	}
	if _, err := Other(g); err != nil {
		return "", fmt.Errorf("find the running slot group: %w", err)
	}
	return g, nil
}

// Other returns the group that is not group.
func (p *Pair) Other(group string) (string, error) { return Other(group) }

// Open opens the slot of class in group. Any slot may be opened for
// reading. For writing, Open refuses the running group, and any slot whose
// device is the same file or block device as one of the running group's
// slots (a symbolic link, a hard link, a second device node): the running
// system must never be overwritten. A block device opened for writing is
// opened exclusively, so a mounted partition is refused too.
func (p *Pair) Open(group, class string, write bool) (update.Slot, error) {
	f, err := p.open(group, class, write)
	if err != nil {
		return nil, err // not a nil *File in a non-nil interface
	}
	return f, nil
}

func (p *Pair) open(group, class string, write bool) (*File, error) {
	name := group + "/" + class
	slots, ok := p.groups[group]
	if !ok {
		_, err := Other(group)
		return nil, fmt.Errorf("open slot %s: %w", name, err)
	}
	path, ok := slots[class]
	if !ok {
		return nil, fmt.Errorf("open slot %s: no such slot class: have %s", name, strings.Join(slices.Sorted(maps.Keys(slots)), ", "))
	}
	if !write {
		return openFile(group, class, path, false)
	}
	booted, err := p.Booted()
	if err != nil {
		return nil, fmt.Errorf("open slot %s for writing: %w", name, err)
	}
	if group == booted {
		return nil, fmt.Errorf("open slot %s for writing: %s is the running group", name, group)
	}
	f, err := openFile(group, class, path, true)
	if err != nil {
		return nil, err
	}
	if err := p.notRunning(f, booted); err != nil {
		f.Close()
		return nil, fmt.Errorf("open slot %s for writing: %w", name, err)
	}
	return f, nil
}

// notRunning returns an error if f is the same file or device as a slot of
// the running group. It compares the opened file, not its path, so a path
// swapped after the check cannot slip through.
func (p *Pair) notRunning(f *File, g string) error {
	fi, err := f.f.Stat()
	if err != nil {
		return err
	}
	for _, class := range slices.Sorted(maps.Keys(p.groups[g])) {
		path := p.groups[g][class]
		bi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("check it is not the running slot %s/%s: %w", g, class, err)
		}
		if sameDevice(fi, bi) {
			return fmt.Errorf("%s is the running slot %s/%s (%s)", f.path, g, class, path)
		}
	}
	return nil
}
