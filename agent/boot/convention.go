package boot

import (
	"fmt"
	"strconv"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/agent/slot"
)

// Defaults of Convention.
const (
	DefaultSlotVar             = "gitfleet_slot"
	DefaultUpgradeAvailableVar = "upgrade_available"
	DefaultBootCountVar        = "bootcount"
	DefaultBootLimitVar        = "bootlimit"
	DefaultTries               = 1
)

// maxTries is the largest Tries: the grub.cfg of BOOTCOUNT.md counts boots
// up to 10 (GRUB's script has no arithmetic), so it can only tell a count
// past a limit of 9.
const maxTries = 9

// Convention names the variables of the boot-counting convention and says
// how many boots a trial gets. An empty field means its default.
//
// U-Boot's own boot counter (CONFIG_BOOTCOUNT_LIMIT with
// CONFIG_BOOTCOUNT_ENV) reads upgrade_available, bootcount and bootlimit by
// those names, fixed in its C code: rename them only for a bootloader whose
// script does the counting, such as the grub.cfg of BOOTCOUNT.md.
type Convention struct {
	// Slot names the variable holding the group the bootloader boots, A or
	// B; default gitfleet_slot.
	Slot string `yaml:"slot"`
	// UpgradeAvailable names the variable that is 1 while a trial is
	// pending; default upgrade_available.
	UpgradeAvailable string `yaml:"upgrade_available"`
	// BootCount names the variable counting the boots of a trial; default
	// bootcount.
	BootCount string `yaml:"bootcount"`
	// BootLimit names the variable holding how many boots a trial gets
	// before the bootloader falls back; default bootlimit.
	BootLimit string `yaml:"bootlimit"`
	// Tries is the number of boots a trial gets, which Arm writes to
	// BootLimit: 1 to 9, default 1 (the next boot and only it).
	Tries int `yaml:"tries"`
}

// withDefaults returns c with its empty fields set to their defaults.
func (c Convention) withDefaults() Convention {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.Slot, DefaultSlotVar)
	def(&c.UpgradeAvailable, DefaultUpgradeAvailableVar)
	def(&c.BootCount, DefaultBootCountVar)
	def(&c.BootLimit, DefaultBootLimitVar)
	if c.Tries == 0 {
		c.Tries = DefaultTries
	}
	return c
}

// Validate returns an error naming the field and the fix if c cannot be
// used: each name must be one a bootloader script can read (letters, digits
// and '_', not starting with a digit), the names distinct, and Tries 1 to 9.
func (c Convention) Validate() error {
	c = c.withDefaults()
	fields := []struct{ field, name string }{
		{"slot", c.Slot}, {"upgrade_available", c.UpgradeAvailable},
		{"bootcount", c.BootCount}, {"bootlimit", c.BootLimit},
	}
	seen := map[string]string{}
	for _, f := range fields {
		if !scriptName(f.name) {
			return fmt.Errorf("boot convention: %s is %q: use letters, digits and '_', not starting with a digit, so that a bootloader script can read it", f.field, f.name)
		}
		if prev, ok := seen[f.name]; ok {
			return fmt.Errorf("boot convention: %s and %s are both %q: give each variable its own name", prev, f.field, f.name)
		}
		seen[f.name] = f.field
	}
	if c.Tries < 1 || c.Tries > maxTries {
		return fmt.Errorf("boot convention: tries is %d: want 1 to %d, the limit the grub.cfg of BOOTCOUNT.md can count to", c.Tries, maxTries)
	}
	return nil
}

// scriptName reports whether s is a variable name that U-Boot's hush and
// GRUB's script both read in ${s}.
func scriptName(s string) bool {
	for i, c := range []byte(s) {
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// groupOf returns the group a value of the slot variable boots: B for "B",
// A for anything else, unset included, as the scripts of BOOTCOUNT.md test
// only for B.
func groupOf(value string) string {
	if value == slot.B {
		return slot.B
	}
	return slot.A
}

// State is the convention's variables as a bootloader reads them.
type State struct {
	// Default is the group the bootloader boots: the slot variable, read as
	// the scripts of BOOTCOUNT.md read it (B if it is "B", otherwise A). It
	// is the group on trial while Trial is set.
	Default string
	// Trial is whether a trial is pending: UpgradeAvailable is not 0.
	Trial bool
	// BootCount is how many boots the trial has had, and BootLimit how
	// many it gets before the fallback (0: no limit). BootCount is only
	// meaningful during a trial.
	BootCount, BootLimit uint64
}

// State reads the convention's variables from v, parsing numbers as U-Boot
// does (see PowerOn).
func (c Convention) State(v *bootenv.Vars) State {
	c = c.withDefaults()
	return State{
		Default:   groupOf(get(v, c.Slot)),
		Trial:     upgradeAvailable(get(v, c.UpgradeAvailable)),
		BootCount: ulong(get(v, c.BootCount)),
		BootLimit: ulong(get(v, c.BootLimit)),
	}
}

// Booted returns the group the bootloader started last, for a device whose
// bootloader counts boots in the environment (U-Boot's CONFIG_BOOTCOUNT_ENV,
// the grub.cfg of BOOTCOUNT.md): the group on trial once the trial has
// counted a boot, the other group while the trial has none, and Default
// otherwise. It is wrong between a Revert (or an Arm repeated after the
// trial's boot) and the next boot: the kernel command line is the reliable
// source, and this is for boards whose command line cannot say.
func (s State) Booted() string {
	if s.Trial && s.BootCount == 0 {
		o, _ := slot.Other(s.Default)
		return o
	}
	return s.Default
}

// get returns the value of name in v, "" if unset: U-Boot's scripts and
// env_get_ulong do not tell the two apart either.
func get(v *bootenv.Vars, name string) string {
	s, _ := v.Get(name)
	return s
}

// upgradeAvailable reads upgrade_available as U-Boot's bootcount_env.c does:
// env_get_ulong(…, 10, 0) stored in an int, so a value whose low 32 bits are
// zero reads as no trial.
func upgradeAvailable(s string) bool { return uint32(ulong(s)) != 0 }

// ulong parses s as U-Boot's env_get_ulong(name, 10, 0) does, through
// simple_strtoul (U-Boot 2021.10 and later): a "0x" or "0X" prefix selects
// hexadecimal even with base 10, then as many digits as are valid are read,
// and anything after them is ignored; no digit is 0, and so is an unset
// variable. It wraps on overflow, like C's unsigned long on a 64-bit board.
func ulong(s string) uint64 {
	base := uint64(10)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, s = 16, s[2:]
	}
	var n uint64
	for _, c := range []byte(s) {
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return n
		}
		if d >= base {
			return n
		}
		n = n*base + d
	}
	return n
}

// arm sets v to try group at the next boot, and only then if Tries is 1:
// group becomes the slot variable's value, a trial is pending, its boot count
// is 0 and its limit Tries. Writing it again is harmless before the reboot;
// after the trial's boot it grants the trial its tries again.
func (c Convention) arm(v *bootenv.Vars, group string) error {
	c = c.withDefaults()
	return set(v, c.Slot, group, c.UpgradeAvailable, "1", c.BootCount, "0", c.BootLimit, strconv.Itoa(c.Tries))
}

// settle sets v to boot group by default with no trial pending: both Commit
// (group is the one on trial) and Revert (group is the old one).
func (c Convention) settle(v *bootenv.Vars, group string) error {
	c = c.withDefaults()
	return set(v, c.Slot, group, c.UpgradeAvailable, "0", c.BootCount, "0")
}

// set sets each name, value pair of kv in v.
func set(v *bootenv.Vars, kv ...string) error {
	for i := 0; i < len(kv); i += 2 {
		if err := v.Set(kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// A Decision is what the bootloader does at one power-on.
type Decision struct {
	// Group is the group it boots.
	Group string
	// Fallback is set when the trial passed its limit and the alternate
	// boot command switched back to the other group.
	Fallback bool
	// Save is the environment it saves before booting, or nil when it
	// saves nothing (no trial pending).
	Save *bootenv.Vars
}

// PowerOn does what U-Boot with CONFIG_BOOTCOUNT_LIMIT and
// CONFIG_BOOTCOUNT_ENV does when it autoboots, running the bootcmd and
// altbootcmd of BOOTCOUNT.md; the grub.cfg there does the same. Given the
// environment v, which it does not change, it returns the group to boot and
// the environment to save. The algorithm:
//
//  1. A trial is pending if UpgradeAvailable, parsed as U-Boot parses a
//     number (see State), is not 0.
//  2. count is BootCount plus 1 if a trial is pending, else 1. With a trial
//     pending, BootCount is set to count and the environment is saved.
//  3. limit is BootLimit. If limit is not 0 and count > limit, the alternate
//     boot command runs: the slot variable is set to the other group (B
//     unless it was "B"), UpgradeAvailable and BootCount to 0, and the
//     environment is saved.
//  4. The group booted is the slot variable's: B if it is "B", otherwise A.
//
// So after Arm with Tries n, the trial group boots n times; the power-on
// after that falls back, unless Commit or Revert ended the trial in between.
// The error reports an invalid Convention.
func (c Convention) PowerOn(v *bootenv.Vars) (Decision, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, err
	}
	c = c.withDefaults()
	s := c.State(v)
	var d Decision
	count := uint64(1)
	if s.Trial {
		count = s.BootCount + 1
		d.Save = v.Clone()
		if err := d.Save.Set(c.BootCount, strconv.FormatUint(count, 10)); err != nil {
			return Decision{}, err
		}
	}
	group := s.Default
	if s.BootLimit != 0 && count > s.BootLimit {
		group, _ = slot.Other(s.Default)
		if d.Save == nil {
			d.Save = v.Clone()
		}
		if err := c.settle(d.Save, group); err != nil {
			return Decision{}, err
		}
		d.Fallback = true
	}
	d.Group = group
	return d, nil
}
