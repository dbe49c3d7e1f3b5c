package hil

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/hil/vboard"
	"github.com/gitfleet/gitfleet/server/recipe"
)

// TestExampleFirmware builds the example firmware as the server does
// (recipe.Load and recipe.Build on a clean copy, at a tag) and checks that
// its build script writes exactly the image vboard.WriteImage writes, for
// every kind, and that the board accepts it.
func TestExampleFirmware(t *testing.T) {
	cases := []struct {
		name, kind, tag string
		args            []string
		version         string
		size            int64
	}{
		{"healthy from the tag", "healthy", "v1.6.0", nil, "1.6.0", 1 << 20},
		{"broken", "broken", "v1.5.0", nil, "1.5.0", 1 << 20},
		{"unhealthy, by hand", "healthy", "", []string{"--version", "1.5.1", "--kind", "unhealthy", "--size", "70000"}, "1.5.1", 70000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"gitfleet.yaml", "build.sh"} {
				copyFile(t, filepath.Join("example-firmware", f), filepath.Join(dir, f))
			}
			os.WriteFile(filepath.Join(dir, "image-kind"), []byte(tc.kind+"\n"), 0o644)
			var path string
			if tc.args == nil {
				r, err := recipe.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				var log bytes.Buffer
				images, err := recipe.Build(context.Background(), r, recipe.Checkout{Dir: dir, Time: time.Now(), Tag: tc.tag}, &log)
				if err != nil {
					t.Fatalf("build: %v\n%s", err, log.String())
				}
				path = images[0].Path
			} else {
				cmd := exec.Command("./build.sh", tc.args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("build.sh: %v\n%s", err, out)
				}
				path = filepath.Join(dir, "out", "rootfs.img")
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			kind := tc.kind
			if tc.args != nil {
				kind = "unhealthy"
			}
			var want bytes.Buffer
			if err := vboard.WriteImage(&want, vboard.Kind(kind), tc.version, tc.size); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("build.sh wrote %d bytes that differ from vboard.WriteImage's %d", len(got), want.Len())
			}
			if im, err := vboard.ReadImage(bytes.NewReader(got)); err != nil || im.Version != tc.version {
				t.Errorf("the board reads %+v, %v", im, err)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, _ := src.Stat()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, st.Mode())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
}
