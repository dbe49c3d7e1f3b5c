package gitsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gitfleet/gitfleet/server/recipe"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestTransports runs the whole round trip over every transport, against
// git's own servers: poll a new tag, check it out, read fleet.yaml, promote
// a release and see the commit with git.
func TestTransports(t *testing.T) {
	tests := []struct {
		name string
		url  func(w *workspace) (string, func(*Config))
	}{
		{"file", func(w *workspace) (string, func(*Config)) { return w.fileURL(), nil }},
		{"git daemon", func(w *workspace) (string, func(*Config)) { return w.daemonURL(), nil }},
		{"http-backend", func(w *workspace) (string, func(*Config)) { return w.httpURL(nil), nil }},
		{"http-backend with basic auth", func(w *workspace) (string, func(*Config)) {
			return w.httpURL(basicAuth("fleet", "t0ken")), func(c *Config) { c.Auth.Username, c.Auth.Password = "fleet", "t0ken" }
		}},
		{"https", func(w *workspace) (string, func(*Config)) {
			url, ca := w.httpsURL()
			return url, func(c *Config) { c.Auth.CABundle = ca }
		}},
		{"ssh", func(w *workspace) (string, func(*Config)) {
			url, key, known := w.sshURL()
			return url, func(c *Config) { c.Auth.SSHKey, c.Auth.KnownHosts = key, known }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			w := newWorkspace(t)
			commit := w.seed()
			w.tag("v1.1.0", "-a", "-m", "release 1.1.0")
			url, mod := tt.url(w)
			r := w.open(url, mod)

			ch, _, err := r.Poll(ctx, State{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ch.New) != 1 || ch.New[0].Name != "v1.1.0" || ch.New[0].Commit != commit {
				t.Fatalf("Poll: new %+v, want v1.1.0 at %s", ch.New, commit)
			}
			dir := filepath.Join(t.TempDir(), "src")
			if err := r.Checkout(ctx, ch.New[0], dir); err != nil {
				t.Fatal(err)
			}
			if _, err := recipe.Load(dir); err != nil {
				t.Errorf("recipe in checkout: %v", err)
			}
			fl, head, err := r.Fleet()
			if err != nil {
				t.Fatal(err)
			}
			if head != commit || fl.Channel("production").Release != "1.0.0" {
				t.Errorf("Fleet at %s: production runs %q, want 1.0.0 at %s", head, fl.Channel("production").Release, commit)
			}
			p, err := r.Promote(ctx, "production", "v1.1.0")
			if err != nil {
				t.Fatal(err)
			}
			if got := w.run(w.bare, "rev-parse", "main"); got != p.Commit {
				t.Errorf("server's main is %s, want the promotion %s", got, p.Commit)
			}
			if got, want := w.run(w.bare, "log", "-1", "--format=%s"), "promote v1.1.0 to production"; got != want {
				t.Errorf("promotion commit message %q, want %q", got, want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	w := newWorkspace(t)
	notRepo := t.TempDir()
	if err := os.WriteFile(filepath.Join(notRepo, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{URL: w.fileURL()}, "open repository cache: no directory configured"},
		{"no URL", Config{Dir: t.TempDir()}, "open repository : no URL configured"},
		{"bad branch", Config{URL: w.fileURL(), Dir: t.TempDir(), Branch: "a..b"}, `open repository cache: branch "a..b" is not a valid branch name`},
		{"dir with other files", Config{URL: w.fileURL(), Dir: notRepo}, "open repository cache " + notRepo + ": directory is neither empty nor a git repository"},
		{"ssh without key", Config{URL: "ssh://git@127.0.0.1:1/fw.git", Dir: t.TempDir()}, "open repository ssh://git@127.0.0.1:1/fw.git: ssh: no private key configured"},
		{"ssh without known hosts", Config{URL: "ssh://git@127.0.0.1:1/fw.git", Dir: t.TempDir(), Auth: Auth{SSHKey: []byte("x")}},
			"open repository ssh://git@127.0.0.1:1/fw.git: ssh private key: ssh: no key found"},
		{"unsupported scheme", Config{URL: "ftp://example.com/fw.git", Dir: t.TempDir()}, `open repository ftp://example.com/fw.git: unsupported scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.cfg)
			if got := errString(err); got != tt.want {
				t.Errorf("Open error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}

	// A host key is needed: there is no trust on first use.
	url, key, _ := w.sshURL()
	_, err := Open(Config{URL: url, Dir: t.TempDir(), Auth: Auth{SSHKey: key}})
	if got, want := errString(err), "open repository "+url+": ssh: no known_hosts file or host key callback configured"; got != want {
		t.Errorf("Open error\n got: %s\nwant: %s", got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestSSHHostKey checks that a server whose host key is not in known_hosts
// is refused.
func TestSSHHostKey(t *testing.T) {
	w := newWorkspace(t)
	w.seed()
	url, key, _ := w.sshURL()
	_, _, otherKnown := newWorkspace(t).sshURL() // lists another server's key
	r := w.open(url, func(c *Config) { c.Auth.SSHKey, c.Auth.KnownHosts = key, otherKnown })
	err := r.Fetch(testContext(t))
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		t.Errorf("Fetch from a server with an unknown host key: %v, want a knownhosts.KeyError", err)
	}
}

// TestFetchRefused checks that wrong credentials and an untrusted TLS
// certificate fail a fetch.
func TestFetchRefused(t *testing.T) {
	w := newWorkspace(t)
	w.seed()
	httpsURL, _ := w.httpsURL()
	tests := []struct {
		name string
		url  string
		auth Auth
	}{
		{"no password", w.httpURL(basicAuth("fleet", "t0ken")), Auth{}},
		{"wrong password", w.httpURL(basicAuth("fleet", "t0ken")), Auth{Username: "fleet", Password: "guess"}},
		{"untrusted certificate", httpsURL, Auth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.open(tt.url, func(c *Config) { c.Auth = tt.auth })
			if err := r.Fetch(testContext(t)); err == nil {
				t.Errorf("Fetch succeeded")
			}
		})
	}
}

// TestOpenMovedURL checks that a cache follows the configured URL.
func TestOpenMovedURL(t *testing.T) {
	ctx := testContext(t)
	a, b := newWorkspace(t), newWorkspace(t)
	a.seed()
	a.tag("v1.0.0")
	b.seed()
	b.tag("v2.0.0")
	dir := filepath.Join(t.TempDir(), "cache")
	for _, w := range []*workspace{a, b} {
		r, err := Open(Config{URL: w.fileURL(), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Fetch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(Config{URL: b.fileURL(), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := r.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || tags[0].Name != "v2.0.0" {
		t.Errorf("tags after moving the URL: %+v, want only v2.0.0", tags)
	}
}

func TestEmptyRepository(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	r := w.open(w.fileURL(), nil)
	ch, _, err := r.Poll(ctx, State{})
	if err != nil || !ch.Empty() {
		t.Errorf("Poll(empty repository) = %+v, %v; want no changes", ch, err)
	}
	_, _, err = r.Fleet()
	if got, want := errString(err), "read fleet.yaml: branch main not found on "+w.fileURL(); got != want {
		t.Errorf("Fleet error\n got: %s\nwant: %s", got, want)
	}
}

func TestTagChanges(t *testing.T) {
	ctx := testContext(t)
	w := newWorkspace(t)
	first := w.seed()
	w.tag("v1.0.0") // lightweight
	w.tag("v1.1.0-rc.1", "-a", "-m", "rc")
	w.tag("latest")               // not a release
	w.tag("v1.2", "-a", "-m", "") // not semantic: two numbers
	r := w.open(w.daemonURL(), nil)

	poll := func(s State) (Changes, State) {
		t.Helper()
		ch, next, err := r.Poll(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return ch, next
	}
	names := func(tags []Tag) []string {
		var out []string
		for _, t := range tags {
			out = append(out, t.Name)
		}
		return out
	}

	ch, state := poll(State{})
	if ch.Head != first || state.Head != first {
		t.Errorf("first poll: head %q, state's %q, want %s", ch.Head, state.Head, first)
	}
	if diff := cmp.Diff([]string{"v1.0.0", "v1.1.0-rc.1"}, names(ch.New)); diff != "" || len(ch.Moved)+len(ch.Deleted) > 0 {
		t.Fatalf("first poll: %+v; new -want +got:\n%s", ch, diff)
	}
	rc := ch.New[1]
	wantRC := Tag{Name: "v1.1.0-rc.1", Version: "1.1.0-rc.1", Object: w.run(w.work, "rev-parse", "v1.1.0-rc.1"), Annotated: true, Commit: first}
	if diff := cmp.Diff(wantRC, rc, cmpopts.IgnoreFields(Tag{}, "CommitTime")); diff != "" {
		t.Errorf("annotated tag: -want +got:\n%s", diff)
	}
	if lw := ch.New[0]; lw.Annotated || lw.Object != first || lw.Commit != first {
		t.Errorf("lightweight tag %+v, want object and commit %s", lw, first)
	}
	if got, want := rc.CommitTime.Unix(), mustUnix(t, w.run(w.work, "log", "-1", "--format=%ct", first)); got != want {
		t.Errorf("commit time %d, want %d", got, want)
	}

	if ch, _ := poll(state); !ch.Empty() {
		t.Errorf("poll without changes: %+v", ch)
	}

	// A new release, a moved one and a deleted one.
	second := w.commit("second")
	w.tag("v1.2.0", "-a", "-m", "1.2.0")
	w.tag("v1.0.0", "-f")
	w.run(w.work, "push", "-q", "origin", "--delete", "refs/tags/v1.1.0-rc.1")
	w.run(w.work, "tag", "-d", "v1.1.0-rc.1")
	ch, state = poll(state)
	if ch.Head != second {
		t.Errorf("head %q after a commit, want %s", ch.Head, second)
	}
	if diff := cmp.Diff([]string{"v1.2.0"}, names(ch.New)); diff != "" {
		t.Errorf("new tags -want +got:\n%s", diff)
	}
	if len(ch.Moved) != 1 || ch.Moved[0].Tag.Name != "v1.0.0" || ch.Moved[0].Was != first || ch.Moved[0].Tag.Commit != second {
		t.Errorf("moved %+v, want v1.0.0 from %s to %s", ch.Moved, first, second)
	}
	if diff := cmp.Diff([]Deletion{{Name: "v1.1.0-rc.1", Was: rc.Object}}, ch.Deleted); diff != "" {
		t.Errorf("deleted -want +got:\n%s", diff)
	}

	// Each change is reported once; the moved tag stays remembered by where
	// it first pointed, so it is never rebuilt on its own.
	if ch, _ := poll(state); !ch.Empty() {
		t.Errorf("second poll after the changes: %+v", ch)
	}
	if got := state.Tags["v1.0.0"]; got.Object != first {
		t.Errorf("state of the moved tag %+v, want its first object %s", got, first)
	}

	// Saved and loaded, the state says the same.
	file := filepath.Join(t.TempDir(), "tags.json")
	if err := state.Save(file); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadState(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(state, loaded); diff != "" {
		t.Errorf("LoadState(Save(s)): -want +got:\n%s", diff)
	}

	// A deleted tag pushed again elsewhere is a move, not a new release.
	w.tag("v1.1.0-rc.1", "-a", "-m", "rc again")
	ch, state = poll(state)
	if len(ch.New) != 0 || len(ch.Moved) != 1 || ch.Moved[0].Tag.Name != "v1.1.0-rc.1" || ch.Moved[0].Was != rc.Object {
		t.Errorf("re-created tag: %+v, want a move from %s", ch, rc.Object)
	}

	// Moved back where it was first, a tag is quietly restored.
	w.run(w.work, "tag", "-f", "v1.0.0", first)
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/v1.0.0")
	ch, state = poll(state)
	if !ch.Empty() {
		t.Errorf("tag moved back: %+v, want no changes", ch)
	}
	if got := state.Tags["v1.0.0"]; got != (SeenTag{Object: first}) {
		t.Errorf("restored tag's state %+v", got)
	}

	// An operator accepts a moved tag by forgetting it.
	state.Forget("v1.1.0-rc.1")
	ch, state = poll(state)
	if diff := cmp.Diff([]string{"v1.1.0-rc.1"}, names(ch.New)); diff != "" {
		t.Errorf("forgotten tag: new -want +got:\n%s", diff)
	}

	// All tags gone from the server.
	for _, tag := range []string{"v1.0.0", "v1.1.0-rc.1", "v1.2.0", "latest", "v1.2"} {
		w.run(w.work, "push", "-q", "origin", "--delete", "refs/tags/"+tag)
	}
	ch, _ = poll(state)
	if len(ch.Deleted) != 3 {
		t.Errorf("all tags deleted: %+v, want 3 deletions", ch)
	}
}

func mustUnix(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDiff(t *testing.T) {
	tag := func(name, object string) Tag { return Tag{Name: name, Object: object} }
	tests := []struct {
		name      string
		prev      map[string]SeenTag
		tags      []Tag
		want      Changes
		wantState map[string]SeenTag
	}{
		{"nothing", nil, nil, Changes{}, map[string]SeenTag{}},
		{"new", nil, []Tag{tag("v1.0.0", "a")}, Changes{New: []Tag{tag("v1.0.0", "a")}}, map[string]SeenTag{"v1.0.0": {Object: "a"}}},
		{"unchanged", map[string]SeenTag{"v1.0.0": {Object: "a"}}, []Tag{tag("v1.0.0", "a")}, Changes{}, map[string]SeenTag{"v1.0.0": {Object: "a"}}},
		{"moved", map[string]SeenTag{"v1.0.0": {Object: "a"}}, []Tag{tag("v1.0.0", "b")},
			Changes{Moved: []Move{{Tag: tag("v1.0.0", "b"), Was: "a"}}}, map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}},
		{"moved, reported", map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}, []Tag{tag("v1.0.0", "b")},
			Changes{}, map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}},
		{"moved again", map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}, []Tag{tag("v1.0.0", "c")},
			Changes{Moved: []Move{{Tag: tag("v1.0.0", "c"), Was: "a"}}}, map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "c"}}},
		{"moved back", map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}, []Tag{tag("v1.0.0", "a")},
			Changes{}, map[string]SeenTag{"v1.0.0": {Object: "a"}}},
		{"deleted", map[string]SeenTag{"v1.0.0": {Object: "a"}}, nil,
			Changes{Deleted: []Deletion{{Name: "v1.0.0", Was: "a"}}}, map[string]SeenTag{"v1.0.0": {Object: "a", Deleted: true}}},
		{"deleted, reported", map[string]SeenTag{"v1.0.0": {Object: "a", Deleted: true}}, nil,
			Changes{}, map[string]SeenTag{"v1.0.0": {Object: "a", Deleted: true}}},
		{"deleted, back elsewhere", map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b", Deleted: true}}, []Tag{tag("v1.0.0", "b")},
			Changes{Moved: []Move{{Tag: tag("v1.0.0", "b"), Was: "a"}}}, map[string]SeenTag{"v1.0.0": {Object: "a", Moved: "b"}}},
		{"deleted, back in place", map[string]SeenTag{"v1.0.0": {Object: "a", Deleted: true}}, []Tag{tag("v1.0.0", "a")},
			Changes{}, map[string]SeenTag{"v1.0.0": {Object: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := State{Tags: tt.prev}
			before := cmp.Diff(State{}, prev)
			got, next := Diff(prev, tt.tags)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("changes -want +got:\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantState, next.Tags, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("next state -want +got:\n%s", diff)
			}
			if after := cmp.Diff(State{}, prev); after != before {
				t.Errorf("Diff modified prev")
			}
		})
	}
}

func TestLoadStateMissing(t *testing.T) {
	s, err := LoadState(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || len(s.Tags) != 0 {
		t.Errorf("LoadState(missing) = %+v, %v; want the zero State", s, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(bad); err == nil {
		t.Errorf("LoadState(bad JSON) succeeded")
	}
	if _, err := LoadState(t.TempDir()); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadState(a directory) = %v, want a read error", err)
	}
}
