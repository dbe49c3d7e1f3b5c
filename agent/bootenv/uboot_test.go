package bootenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// copyWith returns a copy of the layout holding data (padded with 0xff) and
// flags, with a valid CRC unless badCRC.
func copyWith(l UBootLayout, flags uint8, data string, badCRC bool) []byte {
	b := bytes.Repeat([]byte{UBootPadding}, l.Size)
	copy(b[l.headerSize():], data)
	crc := crc32.ChecksumIEEE(b[l.headerSize():])
	if badCRC {
		crc++
	}
	binary.LittleEndian.PutUint32(b, crc)
	if l.Redundant {
		b[4] = flags
	}
	return b
}

func TestUBootActive(t *testing.T) {
	l := UBootLayout{Size: 64, Redundant: true}
	valid := func(flags uint8) []byte { return copyWith(l, flags, "a=1\x00\x00", false) }
	invalid := func(flags uint8) []byte { return copyWith(l, flags, "a=1\x00\x00", true) }
	tests := []struct {
		name       string
		copies     [][]byte
		want       int
		wantActive bool
	}{
		{"only first valid", [][]byte{valid(1), invalid(9)}, 0, true},
		{"only second valid", [][]byte{invalid(9), valid(1)}, 1, true},
		{"second unreadable", [][]byte{valid(3), nil}, 0, true},
		{"none valid", [][]byte{invalid(1), invalid(2)}, 0, false},
		{"none readable", [][]byte{nil, nil}, 0, false},
		{"higher first", [][]byte{valid(7), valid(6)}, 0, true},
		{"higher second", [][]byte{valid(6), valid(7)}, 1, true},
		{"equal flags pick first", [][]byte{valid(5), valid(5)}, 0, true},
		{"wrapped to second", [][]byte{valid(255), valid(0)}, 1, true},
		{"wrapped to first", [][]byte{valid(0), valid(255)}, 0, true},
		{"254 beats 0", [][]byte{valid(0), valid(254)}, 1, true},
		{"1 beats 255 only by order", [][]byte{valid(255), valid(1)}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := l.active(tt.copies)
			if ok != tt.wantActive || (ok && got != tt.want) {
				t.Errorf("active() = %d, %v, want %d, %v", got, ok, tt.want, tt.wantActive)
			}
		})
	}

	single := UBootLayout{Size: 64}
	if got, ok := single.active([][]byte{copyWith(single, 0, "\x00", false)}); !ok || got != 0 {
		t.Errorf("single valid copy: active() = %d, %v, want 0, true", got, ok)
	}
	if _, ok := single.active([][]byte{copyWith(single, 0, "\x00", true)}); ok {
		t.Error("single copy with a bad CRC: active() reports a valid copy")
	}
}

func TestParseUBootData(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    string // Vars.String of the result
		wantErr string
	}{
		{"empty environment", "\x00\xff\xff", "", ""},
		{"variables in order", "b=2\x00a=x=y\x00\x00\xff", "b=2\na=x=y\n", ""},
		{"empty value kept", "a=\x00\x00", "a=\n", ""},
		{"newline in value", "a=1\n2\x00\x00", "a=1\n2\n", ""},
		{"last duplicate wins in first place", "a=1\x00b=2\x00a=3\x00\x00", "a=3\nb=2\n", ""},
		{"entry without equals skipped", "junk\x00a=1\x00\x00", "a=1\n", ""},
		{"empty name skipped", "=v\x00a=1\x00\x00", "a=1\n", ""},
		{"terminator at the last byte", "a=1\x00\x00", "a=1\n", ""},
		{"zero padding", "a=1\x00\x00\x00\x00", "a=1\n", ""},
		{"unterminated entry", "a=1\x00b=2", "", "entry at data byte 4 has no NUL"},
		{"no empty entry", "a=1\x00b=2\x00", "", "has no empty entry"},
		{"empty area", "", "", "has no empty entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseUBootData([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseUBootData(%q) error = %v, want one containing %q", tt.data, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseUBootData(%q): %v", tt.data, err)
			}
			if got := v.String(); got != tt.want {
				t.Errorf("parseUBootData(%q) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}

func TestUBootMarshal(t *testing.T) {
	var v Vars
	v.set("bootcmd", "run x")
	v.set("a", "")
	tests := []struct {
		name   string
		layout UBootLayout
		flags  uint8
		want   string // the bytes after the CRC
	}{
		{"single", UBootLayout{Size: 24}, 9, "bootcmd=run x\x00a=\x00\x00\xff\xff"},
		{"redundant", UBootLayout{Size: 24, Redundant: true}, 9, "\x09bootcmd=run x\x00a=\x00\x00\xff"},
		{"exact fit", UBootLayout{Size: 22}, 0, "bootcmd=run x\x00a=\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.layout.Marshal(&v, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b[4:]); got != tt.want {
				t.Errorf("Marshal() after the CRC = %q, want %q", got, tt.want)
			}
			if got, want := binary.LittleEndian.Uint32(b), crc32.ChecksumIEEE(b[tt.layout.headerSize():]); got != want {
				t.Errorf("CRC = %#08x, want %#08x", got, want)
			}
			back, flags, err := tt.layout.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := back.String(), v.String(); got != want {
				t.Errorf("Unmarshal(Marshal()) = %q, want %q", got, want)
			}
			if tt.layout.Redundant && flags != tt.flags {
				t.Errorf("Unmarshal() flags = %d, want %d", flags, tt.flags)
			}
		})
	}
}

func TestUBootMarshalTooLarge(t *testing.T) {
	var v Vars
	v.set("bootcmd", "run x")
	// "bootcmd=run x\x00" and the final "\x00" need 15 bytes; 18 leaves 14.
	_, err := UBootLayout{Size: 18}.Marshal(&v, 0)
	if got, want := errString(err), "U-Boot environment of 1 variables needs 15 bytes, ENVSIZE 0x12 leaves 14 after the 4-byte header"; got != want {
		t.Errorf("Marshal() error = %q, want %q", got, want)
	}
}

func TestUBootUnmarshalRejects(t *testing.T) {
	l := UBootLayout{Size: 16, Redundant: true}
	tests := []struct {
		name    string
		b       []byte
		corrupt bool
		wantErr string
	}{
		{"bad CRC", copyWith(l, 1, "a=1\x00\x00", true), true, "CRC32 is"},
		{"short copy", copyWith(l, 1, "a=1\x00\x00", false)[:15], false, "has 15 bytes, want 16"},
		{"no terminator", copyWith(l, 1, "a=12345678\x00", false), false, "no empty entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := l.Unmarshal(tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Unmarshal() error = %v, want one containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrCorrupt); got != tt.corrupt {
				t.Errorf("errors.Is(err, ErrCorrupt) = %v, want %v", got, tt.corrupt)
			}
		})
	}
	if _, _, err := (UBootLayout{Size: 5, Redundant: true}).Unmarshal(make([]byte, 5)); err == nil {
		t.Error("Unmarshal() with a layout too small for any environment succeeded")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
