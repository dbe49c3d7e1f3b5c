package vboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
)

// A load is the slot the bootloader picked and the image it loaded.
type load struct {
	group   string
	image   Image
	root    string // the root device the command line names
	part    int    // its partition number
	cmdline string
}

// bootloader does what U-Boot with the bootcmd and altbootcmd of
// agent/boot/BOOTCOUNT.md does at power-on: read the environment, count the
// boot of a pending trial, fall back past the boot limit (all of which is
// boot.Convention.PowerOn), then load the chosen slot's image and check its
// hash. Its messages are U-Boot's, so a rig's patterns match a real board.
func (b *Board) bootloader() (load, error) {
	b.print("")
	b.print("U-Boot 2024.01-gitfleet-vboard (%s)", b.cfg.DeviceID)
	b.print("")
	b.print("Model: gitfleet virtual board (%s)", b.cfg.DeviceType)
	b.print("DRAM:  1 GiB")
	env := &boot.File{Path: b.path("bootenv")}
	var d boot.Decision
	var st boot.State
	err := env.Update(context.Background(), func(v *bootenv.Vars) error {
		var err error
		conv := boot.Convention{}
		st = conv.State(v)
		if d, err = conv.PowerOn(v); err != nil {
			return err
		}
		if d.Save == nil {
			return errUnchanged
		}
		*v = *d.Save
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		b.print("Loading Environment from file... FAILED: %v", err)
		return load{}, fmt.Errorf("gitfleet: cannot read the environment")
	}
	b.print("Loading Environment from file... OK")
	if st.Trial {
		b.print("gitfleet: trial of slot %s: boot %d of %d", st.Default, st.BootCount+1, st.BootLimit)
	}
	if d.Fallback {
		// U-Boot's own words (common/autoboot.c), which rigs match.
		b.print("Warning: Bootlimit (%d) exceeded. Using altbootcmd.", st.BootLimit)
	}
	b.print("Hit any key to stop autoboot:  0")
	l := load{group: d.Group, part: 2}
	if d.Group == "B" {
		l.part = 3
	}
	l.root = fmt.Sprintf("/dev/mmcblk0p%d", l.part)
	b.print("## Loading kernel from slot %s (%s) ...", l.group, l.root)
	l.image, err = ReadImageFile(b.path("slots", l.group+".img"))
	if err != nil {
		b.print("   %v", err)
		b.print("ERROR: can't get kernel image!")
		return load{}, fmt.Errorf("gitfleet: cannot boot group %s", l.group)
	}
	b.print("   Image: %s %s, %d bytes, sha256 OK", l.image.Kind, l.image.Version, l.image.Payload)
	l.cmdline = fmt.Sprintf("console=ttyS0,115200 root=%s rootwait ro gitfleet.slot=%s", l.root, l.group)
	return l, nil
}

// errUnchanged stops an environment update that has nothing to save: with
// no trial pending, U-Boot writes nothing, and neither does the board.
var errUnchanged = errors.New("unchanged")

// kernelStart prints the kernel's first words.
func (b *Board) kernelStart(l load) {
	b.print("Starting kernel ...")
	b.print("")
	b.print("[    0.000000] Linux version 6.1.0-gitfleet-vboard (image %s %s)", l.image.Kind, l.image.Version)
	b.print("[    0.000000] Kernel command line: %s", l.cmdline)
}
