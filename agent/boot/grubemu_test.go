package boot_test

// This test runs the grub.cfg of BOOTCOUNT.md in GRUB itself (grub-emu,
// GRUB 2.06 as a Linux program) and checks that it boots the group and saves
// the environment that PowerOn says. It is behind the grubemu build tag
// until internal/testenv/tools.txt lists grub-emu, mke2fs and debugfs:
//
//	go test -tags grubemu -run TestGRUBConfig ./agent/boot/
//
// GRUB's save_env writes a file's blocks in place, which it cannot do on the
// host file system grub-emu reads, so the block lives in an ext2 image that
// grub-emu sees as (hd0), made by mke2fs -d and read back by debugfs.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestGRUBConfigMatchesPowerOn(t *testing.T) {
	emu, mke2fs, debugfs := testenv.Tool(t, "grub-emu"), testenv.Tool(t, "mke2fs"), testenv.Tool(t, "debugfs")
	dir := t.TempDir()
	// grub-emu loads its modules and grub.cfg from the directory -d names.
	mods := "/usr/lib/grub/x86_64-emu"
	if err := os.CopyFS(filepath.Join(dir, "x86_64-emu"), os.DirFS(mods)); err != nil {
		t.Fatal(err)
	}
	cfg := "insmod ext2\n" + docBlock(t, "grub")
	for _, r := range []struct{ old, new string }{
		{"load_env ", "load_env --file (hd0)/grubenv "},
		{"save_env ", "save_env --file (hd0)/grubenv "},
	} {
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	// The menu entry prints what it would boot, then ends the emulator.
	cfg = regexp.MustCompile(`(?m)^  linux .*$`).ReplaceAllLiteralString(cfg, `  echo "GITFLEET BOOT ${gitfleet_slot} ${gitfleet_part}"`)
	cfg = regexp.MustCompile(`(?m)^  initrd .*$`).ReplaceAllLiteralString(cfg, "  halt")
	write(t, filepath.Join(dir, "grub.cfg"), cfg)
	image := filepath.Join(dir, "disk.img")
	write(t, filepath.Join(dir, "device.map"), "(hd0) "+image+"\n")

	tests := []struct {
		name string
		env  []string
	}{
		{"no trial", []string{"gitfleet_slot=B", "upgrade_available=0", "bootcount=0", "bootlimit=1"}},
		{"fresh environment", nil},
		{"first boot of a trial", []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=0", "bootlimit=1"}},
		{"fallback", []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=1", "bootlimit=1"}},
		{"fallback to B", []string{"gitfleet_slot=A", "upgrade_available=1", "bootcount=1", "bootlimit=1"}},
		{"third of three boots", []string{"gitfleet_slot=A", "upgrade_available=1", "bootcount=2", "bootlimit=3"}},
		{"past nine boots", []string{"gitfleet_slot=A", "upgrade_available=1", "bootcount=9", "bootlimit=9"}},
		{"unset count", []string{"gitfleet_slot=B", "upgrade_available=1", "bootlimit=1"}},
		{"no limit", []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=5"}},
		{"limit 0", []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=5", "bootlimit=0"}},
		{"odd group", []string{"gitfleet_slot=b", "upgrade_available=1", "bootcount=1", "bootlimit=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := vars(t, tt.env...)
			want, err := boot.Convention{}.PowerOn(env)
			if err != nil {
				t.Fatal(err)
			}
			block, err := bootenv.MarshalGRUBEnv(env)
			if err != nil {
				t.Fatal(err)
			}
			fs := t.TempDir()
			write(t, filepath.Join(fs, "grubenv"), string(block))
			os.Remove(image)
			command(t, mke2fs, "-q", "-t", "ext2", "-d", fs, image, "4M")

			out := command(t, emu, "-d", dir, "-r", "host", "-m", filepath.Join(dir, "device.map"))
			m := regexp.MustCompile(`GITFLEET BOOT (\S*) (\S*)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("grub-emu booted nothing; it printed %q", out)
			}
			if strings.Contains(out, "error:") {
				t.Errorf("grub-emu printed an error: %q", out)

			}
			if got := m[1]; got != want.Group {
				t.Errorf("GRUB boots %s, PowerOn %s", got, want.Group)
			}
			if got, want := m[2], map[string]string{"A": "2", "B": "3"}[want.Group]; got != want {
				t.Errorf("GRUB boots partition %s, want %s", got, want)
			}
			saved, err := bootenv.ParseGRUBEnv([]byte(command(t, debugfs, "-R", "cat /grubenv", image)))
			if err != nil {
				t.Fatal(err)
			}
			wantSaved := env
			if want.Save != nil {
				wantSaved = want.Save
			}
			if diff := cmp.Diff(wantSaved.Map(), saved.Map()); diff != "" {
				t.Errorf("GRUB saved (-PowerOn +GRUB):\n%s", diff)
			}
		})
	}
}
