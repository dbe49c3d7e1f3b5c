package gitsource

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitfleet/gitfleet/server/recipe"
)

func TestPromote(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	first := w.seed()
	author := Author{Name: "Release Server", Email: "fleet@example.com"}
	r := w.open(w.fileURL(), func(c *Config) { c.Author = author })

	p, err := r.Promote(ctx, "production", "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if p.Parent != first || p.Message != "promote v1.1.0 to production" || p.Fleet.Channel("production").Release != "1.1.0" {
		t.Errorf("Promote = %+v", p)
	}
	if got := w.run(w.bare, "rev-parse", "main"); got != p.Commit {
		t.Errorf("server's main at %s, want the promotion %s", got, p.Commit)
	}
	if got, want := w.run(w.bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s|%P", "main"),
		"Release Server <fleet@example.com>|Release Server <fleet@example.com>|promote v1.1.0 to production|"+first; got != want {
		t.Errorf("promotion commit\n got: %s\nwant: %s", got, want)
	}
	// One line changed, in one file; objects that git itself finds sound.
	if got, want := w.run(w.bare, "show", "--numstat", "--format=", "main"), "1\t1\tfleet.yaml"; got != want {
		t.Errorf("promotion diff stat %q, want %q", got, want)
	}
	wantFleet := strings.Replace(testFleet, "release: v1.0.0 # the current", "release: v1.1.0 # the current", 1)
	if got := w.run(w.bare, "show", "main:fleet.yaml") + "\n"; got != wantFleet {
		t.Errorf("fleet.yaml after the promotion:\n%s\nwant:\n%s", got, wantFleet)
	}
	w.run(w.bare, "fsck", "--strict", "--no-progress")

	// Nothing to commit, or nowhere to.
	if _, err := r.Promote(ctx, "production", "v1.1.0"); !errors.Is(err, recipe.ErrUnchanged) {
		t.Errorf("Promote(same release) = %v, want ErrUnchanged", err)
	}
	if _, err := r.Promote(ctx, "beta", "v1.1.0"); !errors.Is(err, recipe.ErrUnknownChannel) {
		t.Errorf("Promote(unknown channel) = %v, want ErrUnknownChannel", err)
	}
	if got := w.run(w.bare, "rev-parse", "main"); got != p.Commit {
		t.Errorf("a refused promotion moved main to %s", got)
	}

	// git revert of the promotion is the rollback: fleet.yaml is back, byte
	// for byte.
	w.run(w.work, "pull", "-q", "--ff-only", "origin", "main")
	w.run(w.work, "revert", "--no-edit", "HEAD")
	w.run(w.work, "push", "-q", "origin", "main")
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	fl, head, err := r.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	if head != w.run(w.work, "rev-parse", "HEAD") || string(fl.Bytes()) != testFleet || fl.Channel("production").Release != "1.0.0" {
		t.Errorf("after git revert: fleet at %s runs %q in production:\n%s", head, fl.Channel("production").Release, fl.Bytes())
	}

	// And the release can be promoted again.
	if _, err := r.Promote(ctx, "production", "v1.1.0"); err != nil {
		t.Errorf("Promote after the revert: %v", err)
	}
}

// TestPromoteLosesRace makes the server's branch move between Promote's
// fetch and its push, with a pre-receive hook run by git's receive-pack:
// Promote must start over on the new head and keep the other change.
func TestPromoteLosesRace(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	first := w.seed()
	// The concurrent change, waiting on the server on a side branch.
	w.write(map[string]string{"fleet.yaml": strings.Replace(testFleet, "    release: v1.0.0\n", "    release: v1.0.1\n", 1)})
	w.run(w.work, "commit", "-q", "-am", "promote v1.0.1 to staging")
	other := w.run(w.work, "rev-parse", "HEAD")
	w.run(w.work, "push", "-q", "origin", "HEAD:refs/heads/concurrent")
	w.run(w.work, "reset", "-q", "--hard", first)
	// On the first push only, the hook moves main to it, as a push that
	// won the race would; receive-pack then refuses ours.
	writeHook(t, w.bare, `if [ ! -e raced ]; then
  touch raced
  env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main refs/heads/concurrent
fi
echo x >> pushes
cat >/dev/null`)

	r := w.open(w.httpURL(nil), nil)
	p, err := r.Promote(ctx, "production", "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if p.Parent != other {
		t.Errorf("promotion made on %s, want on the concurrent change %s", p.Parent, other)
	}
	if got, want := w.run(w.bare, "log", "--format=%s", "main"), "promote v1.1.0 to production\npromote v1.0.1 to staging\nfirst"; got != want {
		t.Errorf("history of main:\n%s\nwant:\n%s", got, want)
	}
	fleet := w.run(w.bare, "show", "main:fleet.yaml")
	if !strings.Contains(fleet, "    release: v1.0.1\n") || !strings.Contains(fleet, "release: v1.1.0 # the current") {
		t.Errorf("fleet.yaml lost a change:\n%s", fleet)
	}
	if got := countLines(t, filepath.Join(w.bare, "pushes")); got != 2 {
		t.Errorf("%d pushes, want 2", got)
	}
}

// TestPromoteRefused checks that a push the server refuses for another
// reason than a race is not tried again.
func TestPromoteRefused(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	first := w.seed()
	writeHook(t, w.bare, `echo x >> pushes
echo "promotions are frozen" >&2
exit 1`)
	r := w.open(w.httpURL(nil), nil)
	if _, err := r.Promote(ctx, "production", "v1.1.0"); err == nil {
		t.Fatal("Promote succeeded against a refusing server")
	}
	if got := countLines(t, filepath.Join(w.bare, "pushes")); got != 1 {
		t.Errorf("%d pushes, want 1", got)
	}
	if got := w.run(w.bare, "rev-parse", "main"); got != first {
		t.Errorf("main moved to %s", got)
	}
}

// TestPromoteConcurrent promotes to four channels at once from four
// servers with caches of their own: every promotion lands, one after
// the other.
func TestPromoteConcurrent(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	channels := []string{"alpha", "beta", "gamma", "delta"}
	fleet := "fleet: acme\nchannels:\n"
	for _, c := range channels {
		fleet += "  " + c + ":\n    release: v1.0.0\n    devices: {labels: {ring: " + c + "}}\n"
	}
	w.write(map[string]string{"fleet.yaml": fleet})
	w.commit("four channels")
	url := w.httpURL(nil)

	var wg sync.WaitGroup
	errs := make([]error, len(channels))
	for i, c := range channels {
		r := w.open(url, nil)
		wg.Go(func() { _, errs[i] = r.Promote(ctx, c, "v2.0.0") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := recipe.ParseFleet(recipe.FleetFile, []byte(w.run(w.bare, "show", "main:fleet.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Channels {
		if c.Release != "2.0.0" {
			t.Errorf("channel %s runs %q, want 2.0.0", c.Name, c.Release)
		}
	}
	log := strings.Split(w.run(w.bare, "log", "--format=%s", "main"), "\n")
	slices.Sort(log)
	if want := []string{"four channels", "promote v2.0.0 to alpha", "promote v2.0.0 to beta", "promote v2.0.0 to delta", "promote v2.0.0 to gamma"}; !slices.Equal(log, want) {
		t.Errorf("history %q, want %q", log, want)
	}
}

func writeHook(t *testing.T, bare, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func countLines(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}
