package bootenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt reports an environment the bootloader would not use either: no
// U-Boot copy with a valid CRC, or a file without the GRUB signature. The
// bootloader falls back to its built-in defaults in that case, and so may the
// caller, by writing its defaults with Write.
var ErrCorrupt = errors.New("no valid environment")

// UBootPadding is the byte that fills a U-Boot environment copy after the
// variables. It is 0xff, as mkenvimage writes and erased flash reads, so that
// a copy written here is byte for byte the copy mkenvimage makes from the same
// variables in the same order. The padding is covered by the CRC but never
// read: U-Boot's "env export -c" pads with 0x00 and fw_setenv with whatever
// its buffer held, and both read back fine.
const UBootPadding = 0xff

// maxUBootEnvSize bounds ENVSIZE so that a typo in fw_env.config cannot make
// the agent allocate gigabytes; real environments are 8 KiB to a few MiB.
const maxUBootEnvSize = 64 << 20

// UBootLayout is the layout of one copy of a U-Boot environment.
//
// A single copy is a little-endian CRC32 (IEEE) of the data area in bytes
// [0:4] and the data area in [4:Size]. A copy of a redundant pair has the
// CRC in [0:4], a flags byte in [4] that counts writes, and the data area in
// [5:Size]. The data area holds "name=value\x00" entries, an empty entry
// ("\x00") that ends them, and padding.
type UBootLayout struct {
	// Size is the size of one copy in bytes, header included: ENVSIZE in
	// fw_env.config, CONFIG_ENV_SIZE in U-Boot.
	Size int
	// Redundant is set when the environment is a pair of copies, each with a
	// flags byte.
	Redundant bool
}

// headerSize returns the number of bytes before the data area.
func (l UBootLayout) headerSize() int {
	if l.Redundant {
		return 5
	}
	return 4
}

// DataSize returns the size of the data area: the variables, their
// terminator and padding.
func (l UBootLayout) DataSize() int { return l.Size - l.headerSize() }

// check returns an error if no environment fits the layout.
func (l UBootLayout) check() error {
	if l.Size < l.headerSize()+1 || l.Size > maxUBootEnvSize {
		return fmt.Errorf("U-Boot environment size %d: want %d to %d bytes", l.Size, l.headerSize()+1, maxUBootEnvSize)
	}
	return nil
}

// Marshal encodes v as one copy with the given flags byte (ignored for a
// single copy), variables in v's order, padded with UBootPadding. It returns
// an error naming the sizes if the variables do not fit.
func (l UBootLayout) Marshal(v *Vars, flags uint8) ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	need := 1 // the empty entry that ends the variables
	for name, value := range v.All() {
		need += len(name) + len(value) + 2
	}
	if need > l.DataSize() {
		return nil, fmt.Errorf("U-Boot environment of %d variables needs %d bytes, ENVSIZE %#x leaves %d after the %d-byte header",
			v.Len(), need, l.Size, l.DataSize(), l.headerSize())
	}

	b := make([]byte, l.Size)
	data := b[l.headerSize():]
	n := 0
	for name, value := range v.All() {
		n += copy(data[n:], name)
		data[n] = '='
		n++
		n += copy(data[n:], value)
		data[n] = 0
		n++
	}
	data[n] = 0
	n++
	for i := n; i < len(data); i++ {
		data[i] = UBootPadding
	}
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(data))
	if l.Redundant {
		b[4] = flags
	}
	return b, nil
}

// Unmarshal decodes one copy and returns its variables and flags byte (0 for
// a single copy). A CRC mismatch is an error wrapping ErrCorrupt.
//
// Entries are read the way fw_printenv reads them: up to the empty entry,
// skipping entries without '=' or with an empty name, the last of duplicate
// names winning, values taken byte for byte.
func (l UBootLayout) Unmarshal(b []byte) (*Vars, uint8, error) {
	if err := l.check(); err != nil {
		return nil, 0, err
	}
	if len(b) != l.Size {
		return nil, 0, fmt.Errorf("U-Boot environment copy has %d bytes, want %d", len(b), l.Size)
	}
	flags, ok := l.valid(b)
	if !ok {
		return nil, 0, fmt.Errorf("%w: U-Boot environment CRC32 is %#08x, data has %#08x",
			ErrCorrupt, binary.LittleEndian.Uint32(b), crc32.ChecksumIEEE(b[l.headerSize():]))
	}
	v, err := parseUBootData(b[l.headerSize():])
	if err != nil {
		return nil, 0, err
	}
	return v, flags, nil
}

// valid reports whether the copy's CRC matches its data area, and returns its
// flags byte.
func (l UBootLayout) valid(b []byte) (flags uint8, ok bool) {
	if len(b) != l.Size {
		return 0, false
	}
	if l.Redundant {
		flags = b[4]
	}
	return flags, binary.LittleEndian.Uint32(b) == crc32.ChecksumIEEE(b[l.headerSize():])
}

// active returns the index of the copy U-Boot boots with, or false if no copy
// has a valid CRC. A nil copy is one that could not be read.
//
// With one valid copy, that copy is active. With two, the higher flags byte
// wins, except that 0 beats 255 because the counter wrapped; equal flags
// select the first copy. This is env_import_redund() in U-Boot and
// libuboot_load() in libubootenv for incrementing flags, the kind every
// non-NOR-flash backend writes.
func (l UBootLayout) active(copies [][]byte) (int, bool) {
	valid := make([]bool, len(copies))
	flags := make([]uint8, len(copies))
	for i, c := range copies {
		flags[i], valid[i] = l.valid(c)
	}
	switch {
	case len(copies) == 1 || !valid[1]:
		return 0, valid[0]
	case !valid[0]:
		return 1, true
	case flags[0] == 255 && flags[1] == 0:
		return 1, true
	case flags[0] == 0 && flags[1] == 255:
		return 0, true
	case flags[1] > flags[0]:
		return 1, true
	default:
		return 0, true
	}
}

// parseUBootData decodes the variables of a data area. The area must hold the
// empty entry that ends the variables: every writer puts it there, and
// fw_printenv fails on an area without it (or reads past the area's end).
func parseUBootData(data []byte) (*Vars, error) {
	v := new(Vars)
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], 0)
		if end < 0 {
			return nil, fmt.Errorf("U-Boot environment entry at data byte %d has no NUL before the end of the data area", off)
		}
		if end == 0 {
			return v, nil
		}
		name, value, ok := bytes.Cut(data[off:off+end], []byte("="))
		off += end + 1
		if !ok || len(name) == 0 {
			// fw_printenv skips both; U-Boot deletes "name" and
			// rejects the whole environment over an empty name.
			continue
		}
		v.set(string(name), string(value))
	}
	return nil, fmt.Errorf("U-Boot environment data area of %d bytes has no empty entry ending the variables", len(data))
}
