//go:build linux

package slot

import (
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"
)

// node is a FileInfo for a device node that is not on disk: making a second
// node for a device needs privileges a test should not need.
type node struct {
	mode fs.FileMode
	st   syscall.Stat_t
}

func (n node) Name() string       { return "node" }
func (n node) Size() int64        { return 0 }
func (n node) Mode() fs.FileMode  { return n.mode }
func (n node) ModTime() time.Time { return time.Time{} }
func (n node) IsDir() bool        { return false }
func (n node) Sys() any           { return &n.st }

func TestSameDevice(t *testing.T) {
	block := func(ino, rdev uint64) node {
		n := node{mode: fs.ModeDevice}
		n.st.Ino, n.st.Rdev = ino, rdev
		return n
	}
	char := block(9, 0x103)
	char.mode |= fs.ModeCharDevice
	dir := t.TempDir()
	a, b := dir+"/a", dir+"/b"
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(a, dir+"/a2"); err != nil {
		t.Fatal(err)
	}
	stat := func(p string) fs.FileInfo {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	tests := []struct {
		name string
		a, b fs.FileInfo
		want bool
	}{
		{"two nodes of one block device", block(1, 0xb302), block(2, 0xb302), true},
		{"two block devices", block(1, 0xb302), block(2, 0xb303), false},
		{"block and char device with the same numbers", block(1, 0x103), char, false},
		{"hard links", stat(a), stat(dir + "/a2"), true},
		{"two files", stat(a), stat(b), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameDevice(tt.a, tt.b); got != tt.want {
				t.Errorf("sameDevice() = %t, want %t", got, tt.want)
			}
		})
	}
}
