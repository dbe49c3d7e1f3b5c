package gitsource

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckout(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	commit := w.seed()
	w.tag("v1.0.0", "-a", "-m", "1.0.0")
	r := w.open(w.httpURL(nil), nil)
	tag := tagsByName(t, r)["v1.0.0"]
	dir := filepath.Join(t.TempDir(), "checkout")
	if err := r.Checkout(ctx, tag, dir); err != nil {
		t.Fatal(err)
	}

	got := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		case fi.IsDir():
			got[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		got[rel] = fi.Mode().Perm().String() + " " + string(data)
		if when := fi.ModTime().Unix(); strconv.FormatInt(when, 10) != w.run(w.work, "log", "-1", "--format=%ct", commit) {
			t.Errorf("%s modified at %d, want the commit time", rel, when)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"fleet.yaml":    "-rw-r--r-- " + testFleet,
		"gitfleet.yaml": "-rw-r--r-- product: p\ndevice_types: [gw]\nbuild: {command: make}\nimages: [{name: rootfs, path: out/rootfs, slot: rootfs}]\n",
		"build.sh":      "-rwxr-xr-x #!/bin/sh\nmake\n",
		"src":           "dir",
		"src/main.c":    "-rw-r--r-- int main(void) { return 0; }\n",
		"main.c":        "-> src/main.c",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkout: -want +got:\n%s", diff)
	}

	// Not into a directory with something in it.
	if err := r.Checkout(ctx, tag, dir); err == nil || !strings.Contains(err.Error(), "directory is not empty") {
		t.Errorf("Checkout into a full directory: %v", err)
	}
	// Not when canceled.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Checkout(canceled, tag, filepath.Join(t.TempDir(), "c")); err == nil {
		t.Errorf("Checkout with a canceled context succeeded")
	}
}

// TestCheckoutHostileTree checks that trees git itself would refuse to
// check out are refused: a server may send anything.
func TestCheckoutHostileTree(t *testing.T) {
	for _, name := range []string{".git", ".GIT", ".."} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			w := newWorkspace(t)
			w.seed()
			blob := w.runStdin("evil\n", "hash-object", "-w", "--stdin")
			tree := w.runStdin("100644 blob "+blob+"\t"+name+"\n", "mktree")
			// Nested too, so that a check on the top level alone fails.
			top := w.runStdin("040000 tree "+tree+"\tsub\n", "mktree")
			commit := w.run(w.work, "commit-tree", "-m", "hostile", top)
			w.run(w.work, "tag", "v6.6.6", commit)
			w.run(w.work, "push", "-q", "origin", "refs/tags/v6.6.6")

			r := w.open(w.fileURL(), nil)
			dir := filepath.Join(t.TempDir(), "c")
			err := r.Checkout(ctx, tagsByName(t, r)["v6.6.6"], dir)
			if want := `tree entry "` + name + `" in "sub": refused`; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Checkout = %v, want %q", err, want)
			}
		})
	}
}

// runStdin runs git with input on its standard input.
func (w *workspace) runStdin(input string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.git, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = w.work, w.env, strings.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}
