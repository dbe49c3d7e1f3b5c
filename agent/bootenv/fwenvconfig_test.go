package bootenv_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/google/go-cmp/cmp"
)

func TestParseFwEnvConfig(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []bootenv.FwEnvCopy
	}{
		{
			name: "single",
			text: "/dev/mmcblk0 0x400000 0x4000\n",
			want: []bootenv.FwEnvCopy{{Device: "/dev/mmcblk0", Offset: 0x400000, Size: 0x4000}},
		},
		{
			name: "redundant pair with sectors and comments",
			text: "# Device  offset  size  sector\n\n  # indented comment\n" +
				"/dev/mmcblk0boot0\t0x3e0000 0x20000 0x20000 1\n" +
				"/dev/mmcblk0boot1 0x3e0000 0x20000 0x20000 # trailing\r\n",
			want: []bootenv.FwEnvCopy{
				{Device: "/dev/mmcblk0boot0", Offset: 0x3e0000, Size: 0x20000, SectorSize: 0x20000, Sectors: 1},
				{Device: "/dev/mmcblk0boot1", Offset: 0x3e0000, Size: 0x20000, SectorSize: 0x20000},
			},
		},
		{
			name: "sizes are hexadecimal without 0x",
			text: "env.img 16384 4000 10000 20",
			want: []bootenv.FwEnvCopy{{Device: "env.img", Offset: 16384, Size: 0x4000, SectorSize: 0x10000, Sectors: 0x20}},
		},
		{
			name: "offset in octal and upper-case hex",
			text: "a.img 010 0X40\nb.img 0X10 40\n",
			want: []bootenv.FwEnvCopy{{Device: "a.img", Offset: 8, Size: 0x40}, {Device: "b.img", Offset: 16, Size: 0x40}},
		},
		{
			name: "negative offset counts from the end",
			text: "/dev/mmcblk0 -0x20000 0x20000\n/dev/mmcblk0 -0x40000 0x20000\n",
			want: []bootenv.FwEnvCopy{{Device: "/dev/mmcblk0", Offset: -0x20000, Size: 0x20000}, {Device: "/dev/mmcblk0", Offset: -0x40000, Size: 0x20000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := bootenv.ParseFwEnvConfig([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Copies); diff != "" {
				t.Errorf("copies (-want +got):\n%s", diff)
			}
			again, err := bootenv.ParseFwEnvConfig([]byte(c.String()))
			if err != nil {
				t.Fatalf("parse String() %q: %v", c.String(), err)
			}
			if diff := cmp.Diff(c, again); diff != "" {
				t.Errorf("parse(String()) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFwEnvConfigRejects(t *testing.T) {
	tests := []struct {
		name, text, wantErr string
	}{
		{"empty", "# nothing\n\n", "has 0 copies, want 1 or 2 lines"},
		{"three copies", "a 0 40\nb 0 40\nc 0 40\n", "has 3 copies"},
		{"two fields", "a 0x0\n", "line 1: 2 fields, want DEVICE OFFSET ENVSIZE"},
		{"six fields", "a 0 40 40 1 1\n", "line 1: 6 fields"},
		{"bad offset", "\na 0x 40\n", `line 2: OFFSET "0x": not a number`},
		{"decimal digits in octal", "a 09 40\n", `OFFSET "09": not a number`},
		{"bad size", "a 0 0x4000k\n", `ENVSIZE "0x4000k": not a hexadecimal number`},
		{"negative size", "a 0 -40\n", `ENVSIZE "-40": not a hexadecimal number`},
		{"bad sector size", "a 0 40 zz\n", `SECTORSIZE "zz": not a hexadecimal number`},
		{"zero size", "a 0 0\n", "ENVSIZE 0x0: U-Boot environment size 0: want 5 to"},
		{"size below header", "a 0 5\nb 0 5\n", "want 6 to"},
		{"huge size", "a 0 0x10000000\n", "ENVSIZE 0x10000000"},
		{"different sizes", "a 0 40\nb 0 80\n", "copy 1: ENVSIZE 0x80 differs from copy 0's 0x40"},
		{"overlapping pair", "a 0 0x4000\na 0x2000 0x4000\n", "copies overlap on a: 0x0 and 0x2000"},
		{"overlapping from the end", "a -0x4000 0x4000\na -0x6000 0x4000\n", "copies overlap"},
		{"offset past any device", "a 0x7fffffffffffffff 40\n", "is past any device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bootenv.ParseFwEnvConfig([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseFwEnvConfig(%q) error = %v, want one containing %q", tt.text, err, tt.wantErr)
			}
		})
	}
}

func TestReadFwEnvConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fw_env.config")
	if _, err := bootenv.ReadFwEnvConfig(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFwEnvConfig(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("env.img 0 zz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := bootenv.ReadFwEnvConfig(path)
	if want := "parse " + path + ": line 1: ENVSIZE"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("ReadFwEnvConfig(bad) error = %v, want one starting %q", err, want)
	}
}
