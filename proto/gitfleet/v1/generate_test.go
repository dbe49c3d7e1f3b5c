package gitfleetv1

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// protoRoot is the proto/ folder, relative to this package's folder.
const protoRoot = "../.."

// TestGeneratedCodeIsCurrent runs proto/generate.sh into a temporary folder
// and compares what it makes, byte for byte, with the committed *.pb.go
// files. It fails, never skips, when protoc or protoc-gen-go is missing: the
// script's message names the command that installs it.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join(protoRoot, "generate.sh"), "--no-install", "--out", out)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, output)
	}
	generated := readGoFiles(t, out)
	committed := readGoFiles(t, protoRoot)
	if diff := cmp.Diff(slices.Sorted(maps.Keys(generated)), slices.Sorted(maps.Keys(committed))); diff != "" {
		t.Fatalf("committed *.pb.go files differ from what proto/generate.sh makes (-generated +committed); run make proto:\n%s", diff)
	}
	for name, want := range generated {
		if got := committed[name]; !bytes.Equal(got, want) {
			t.Errorf("proto/%s differs from what proto/generate.sh makes, first at line %d; run make proto", name, firstDifferentLine(got, want))
		}
	}
}

// readGoFiles returns the contents of the *.pb.go files under root, by path
// relative to root.
func readGoFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pb.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatalf("read generated files under %s: %v", root, err)
	}
	return files
}

// firstDifferentLine returns the 1-based number of the first line where a and
// b differ.
func firstDifferentLine(a, b []byte) int {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(al), len(bl)) {
		if !bytes.Equal(al[i], bl[i]) {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}
