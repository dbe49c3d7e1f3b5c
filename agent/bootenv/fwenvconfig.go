package bootenv

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// DefaultFwEnvConfig is where fw_printenv and fw_setenv look for their
// configuration when not given -c.
const DefaultFwEnvConfig = "/etc/fw_env.config"

// FwEnvConfig says where the copies of a U-Boot environment live, in the
// format of fw_env.config: one line per copy, so one line is a single
// environment and two lines are a redundant pair.
type FwEnvConfig struct {
	Copies []FwEnvCopy
}

// FwEnvCopy is one line of fw_env.config:
//
//	DEVICE OFFSET ENVSIZE [SECTORSIZE [NUMSECTORS]]
type FwEnvCopy struct {
	// Device is the path of a block device or regular file.
	Device string
	// Offset is where the copy starts on Device. A negative offset counts
	// from the end of the device, as in U-Boot's fw_env (libubootenv 0.3.2
	// does not support it).
	Offset int64
	// Size is ENVSIZE, the size of the copy in bytes, header included.
	Size int64
	// SectorSize and Sectors are the erase block size and count. They
	// matter only for MTD flash, which this package does not write; they
	// are kept so a configuration survives being parsed and printed. Zero
	// means absent.
	SectorSize int64
	Sectors    int64
}

// ReadFwEnvConfig reads and parses the fw_env.config file at path.
func ReadFwEnvConfig(path string) (FwEnvConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return FwEnvConfig{}, fmt.Errorf("read U-Boot environment config: %w", err)
	}
	c, err := ParseFwEnvConfig(b)
	if err != nil {
		return FwEnvConfig{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

// ParseFwEnvConfig parses the text of an fw_env.config and validates it.
//
// Numbers are read as fw_printenv reads them, which is not uniform: OFFSET
// is a C integer literal (0x hexadecimal, a leading 0 octal, otherwise
// decimal) while ENVSIZE, SECTORSIZE and NUMSECTORS are always hexadecimal,
// with or without 0x, so "4000" means 16 KiB. Lines starting with '#' and
// blank lines are skipped, and a '#' field ends a line. Unlike fw_printenv,
// which ignores a line with fewer than three fields and any line after the
// second, a malformed or third line is an error naming the line: either
// would leave the agent and the bootloader disagreeing about where the
// environment is.
func ParseFwEnvConfig(b []byte) (FwEnvConfig, error) {
	var c FwEnvConfig
	for i, line := range strings.Split(string(b), "\n") {
		fields := strings.FieldsFunc(line, isCSpace)
		for j, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:j]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		cp, err := parseFwEnvLine(fields)
		if err != nil {
			return FwEnvConfig{}, fmt.Errorf("line %d: %w", i+1, err)
		}
		c.Copies = append(c.Copies, cp)
	}
	if err := c.Validate(); err != nil {
		return FwEnvConfig{}, err
	}
	return c, nil
}

// parseFwEnvLine parses the fields of one configuration line.
func parseFwEnvLine(fields []string) (FwEnvCopy, error) {
	if len(fields) < 3 || len(fields) > 5 {
		return FwEnvCopy{}, fmt.Errorf("%d fields, want DEVICE OFFSET ENVSIZE [SECTORSIZE [NUMSECTORS]]", len(fields))
	}
	cp := FwEnvCopy{Device: fields[0]}
	var err error
	if cp.Offset, err = parseCInt(fields[1]); err != nil {
		return FwEnvCopy{}, fmt.Errorf("OFFSET %q: %w", fields[1], err)
	}
	hex := []struct {
		name string
		dst  *int64
	}{{"ENVSIZE", &cp.Size}, {"SECTORSIZE", &cp.SectorSize}, {"NUMSECTORS", &cp.Sectors}}
	for j, f := range fields[2:] {
		if *hex[j].dst, err = parseHex(f); err != nil {
			return FwEnvCopy{}, fmt.Errorf("%s %q: %w", hex[j].name, f, err)
		}
	}
	return cp, nil
}

// parseCInt parses s like strtoll(s, NULL, 0) but rejects trailing bytes.
func parseCInt(s string) (int64, error) {
	digits, neg := strings.CutPrefix(s, "-")
	if !neg {
		digits = strings.TrimPrefix(s, "+")
	}
	base := 10
	switch {
	case len(digits) > 2 && (digits[:2] == "0x" || digits[:2] == "0X"):
		base, digits = 16, digits[2:]
	case len(digits) > 1 && digits[0] == '0':
		base, digits = 8, digits[1:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, errors.New("not a number")
	}
	u, err := strconv.ParseUint(digits, base, 63)
	if err != nil {
		return 0, errors.New("not a number in range")
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// parseHex parses s like scanf's %x: hexadecimal with an optional 0x.
func parseHex(s string) (int64, error) {
	digits := s
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		digits = s[2:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, errors.New("not a hexadecimal number")
	}
	u, err := strconv.ParseUint(digits, 16, 63)
	if err != nil {
		return 0, errors.New("not a hexadecimal number in range")
	}
	return int64(u), nil
}

// isCSpace reports whether r is white space to C's isspace.
func isCSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// Validate returns an error naming the problem if c does not describe a
// usable environment: one or two copies, each with a size that holds a
// header and an empty environment, equal sizes for a pair, and a pair that
// does not overlap on one device.
func (c FwEnvConfig) Validate() error {
	if len(c.Copies) == 0 || len(c.Copies) > 2 {
		return fmt.Errorf("U-Boot environment config has %d copies, want 1 or 2 lines", len(c.Copies))
	}
	layout := UBootLayout{Size: int(min(c.Copies[0].Size, maxUBootEnvSize+1)), Redundant: len(c.Copies) == 2}
	for i, cp := range c.Copies {
		if cp.Device == "" || strings.HasPrefix(cp.Device, "#") || strings.IndexFunc(cp.Device, isCSpace) >= 0 {
			return fmt.Errorf("copy %d: device %q: want a path without white space", i, cp.Device)
		}
		if cp.Size != c.Copies[0].Size {
			return fmt.Errorf("copy %d: ENVSIZE %#x differs from copy 0's %#x", i, cp.Size, c.Copies[0].Size)
		}
		if cp.SectorSize < 0 || cp.Sectors < 0 {
			return fmt.Errorf("copy %d: negative sector size or count", i)
		}
		if cp.Offset > math.MaxInt64-maxUBootEnvSize {
			return fmt.Errorf("copy %d: OFFSET %#x is past any device", i, cp.Offset)
		}
	}
	if err := layout.check(); err != nil {
		return fmt.Errorf("ENVSIZE %#x: %w", c.Copies[0].Size, err)
	}
	if len(c.Copies) == 2 {
		a, b := c.Copies[0], c.Copies[1]
		if a.Device == b.Device && (a.Offset < 0) == (b.Offset < 0) && a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size {
			return fmt.Errorf("copies overlap on %s: %#x and %#x, each %#x bytes", a.Device, a.Offset, b.Offset, a.Size)
		}
	}
	return nil
}

// Layout returns the layout of each copy.
func (c FwEnvConfig) Layout() UBootLayout {
	return UBootLayout{Size: int(c.Copies[0].Size), Redundant: len(c.Copies) == 2}
}

// String returns c in fw_env.config syntax, numbers in hexadecimal, which
// fw_printenv -c reads.
func (c FwEnvConfig) String() string {
	var b strings.Builder
	for _, cp := range c.Copies {
		sign, off := "", cp.Offset
		if off < 0 {
			sign, off = "-", -off
		}
		fmt.Fprintf(&b, "%s %s%#x %#x", cp.Device, sign, off, cp.Size)
		if cp.SectorSize != 0 || cp.Sectors != 0 {
			fmt.Fprintf(&b, " %#x", cp.SectorSize)
		}
		if cp.Sectors != 0 {
			fmt.Fprintf(&b, " %#x", cp.Sectors)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
