package builder_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/conformance"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/builder"
	"github.com/gitfleet/gitfleet/server/gitsource"
	"github.com/gitfleet/gitfleet/server/store"
)

// goodBuild is the build script of firmwareRepo's v1.0.0.
const goodBuild = "#!/bin/sh\nset -e\nmkdir -p out\nfor i in $(seq 1 3000); do echo \"rootfs of $GITFLEET_TAG line $i\"; done > out/rootfs.img\necho built\n"

// firmwareRepo makes a real Git repository whose tags v1.0.0 (builds) and
// v1.1.0 (its build fails) are SSH-signed by a fresh key, and returns its
// file:// URL and the allowed signers file that trusts the key.
func firmwareRepo(t *testing.T) (string, []byte) {
	t.Helper()
	return firmwareRepoBuilding(t, goodBuild)
}

// firmwareRepoBuilding is firmwareRepo with script as v1.0.0's build.sh.
func firmwareRepoBuilding(t *testing.T, script string) (string, []byte) {
	t.Helper()
	git := testenv.Tool(t, "git")
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "release")
	if out, err := exec.Command(testenv.Tool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "release@acme", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(git, append([]string{"-C", dir, "-c", "user.name=Release", "-c", "user.email=release@acme",
			"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key, "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, content string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run("init")
	write("gitfleet.yaml", `product: acme-gateway
device_types: [acme-gw-v2]
rollback_index: 3
build:
  command: ./build.sh
  timeout: 1m
images:
  - {name: rootfs, path: out/rootfs.img, slot: rootfs}
`)
	write("build.sh", script)
	run("add", ".")
	run("commit", "-m", "first release")
	run("tag", "-s", "-m", "release v1.0.0", "v1.0.0")
	write("build.sh", "#!/bin/sh\necho 'compiler exploded' >&2\nexit 3\n")
	run("commit", "-am", "broken build")
	run("tag", "-s", "-m", "release v1.1.0", "v1.1.0")
	return "file://" + dir, []byte("release@acme " + string(pub))
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	url, repo, tags := fetchedRepo(t)
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	objects := bundle.Dir(t.TempDir())
	b := &builder.Builder{Repo: repo, Store: st, Objects: objects, Signer: trust.Sealer(tr.Targets), Verifier: tr.Verifier(t),
		RepoURL: url, Owner: "replica-1"}

	byName := map[string]gitsource.Tag{}
	for _, tg := range tags {
		byName[tg.Name] = tg
	}
	rel, err := b.Build(ctx, byName["v1.0.0"])
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != "1.0.0" || rel.Counter != 3 || !strings.HasPrefix(rel.BundleDigest, "sha256:") || !strings.Contains(rel.Signer, "release@acme") {
		t.Errorf("release = %+v", rel)
	}
	d, err := parseDigest(rel.BundleDigest)
	if err != nil {
		t.Fatal(err)
	}
	if err := conformance.CheckObjects(ctx, objects, d, tr.Verifier(t)); err != nil {
		t.Errorf("stored bundle does not conform: %v", err)
	}
	f, _ := objects.Open(rel.ObjectKeys["envelope"])
	env := make([]byte, 1<<20)
	n, _ := f.Read(env)
	f.Close()
	m, _, err := bundle.OpenEnvelope(ctx, env[:n], tr.Verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Provenance; p == nil || p.Tag != "v1.0.0" || p.Commit != byName["v1.0.0"].Commit || p.Repository != url || p.TagObject == "" {
		t.Errorf("provenance = %+v", m.Provenance)
	}

	// Each tag is built once.
	if _, err := b.Build(ctx, byName["v1.0.0"]); !errors.Is(err, builder.ErrNotClaimed) {
		t.Errorf("second build: err = %v, want ErrNotClaimed", err)
	}
	// A failing build is recorded, with its log.
	_, err = b.Build(ctx, byName["v1.1.0"])
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("broken build: err = %v", err)
	}
	rels, _ := st.Releases(ctx)
	var failed *store.Release
	for i := range rels {
		if rels[i].Tag == "v1.1.0" {
			failed = &rels[i]
		}
	}
	if failed == nil || failed.BuildState != store.Failed || failed.BuildLog == "" {
		t.Fatalf("failed build recorded as %+v", failed)
	}
	logf, err := objects.Open(failed.BuildLog)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _ = logf.Read(buf)
	logf.Close()
	if !strings.Contains(string(buf[:n]), "compiler exploded") {
		t.Errorf("build log = %q", buf[:n])
	}
}

func TestUnsignedTagIsRefused(t *testing.T) {
	ctx := context.Background()
	url, _ := firmwareRepo(t)
	other := filepath.Join(t.TempDir(), "other")
	exec.Command(testenv.Tool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", other).Run()
	pub, _ := os.ReadFile(other + ".pub")
	policy, err := gitsource.SSHPolicy([]byte("someone@else " + string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gitsource.Open(gitsource.Config{URL: url, Dir: filepath.Join(t.TempDir(), "cache"), Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	repo.Fetch(ctx)
	tags, _ := repo.Tags()
	st, _ := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "fleet.db"))
	defer st.Close()
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	objects := bundle.Dir(t.TempDir())
	b := &builder.Builder{Repo: repo, Store: st, Objects: objects, Signer: trust.Sealer(tr.Targets), Verifier: tr.Verifier(t), Owner: "r"}
	for _, tg := range tags {
		if tg.Name != "v1.0.0" {
			continue
		}
		if _, err := b.Build(ctx, tg); err == nil || !strings.Contains(err.Error(), "tag signature") {
			t.Fatalf("tag signed by an unlisted key: err = %v", err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(string(objects), "bundles")); len(entries) != 0 {
		t.Error("a refused tag left a bundle in object storage")
	}
}

func parseDigest(s string) (bundle.Digest, error) {
	var d bundle.Digest
	err := d.UnmarshalText([]byte(strings.TrimPrefix(s, "sha256:")))
	return d, err
}

// fetchedRepo makes the repository of firmwareRepo and returns its URL, a
// fetched gitsource.Repo of it that trusts its signer, and its tags.
func fetchedRepo(t *testing.T) (string, *gitsource.Repo, []gitsource.Tag) {
	t.Helper()
	return fetchedRepoBuilding(t, goodBuild)
}

// fetchedRepoBuilding is fetchedRepo with script as v1.0.0's build.sh.
func fetchedRepoBuilding(t *testing.T, script string) (string, *gitsource.Repo, []gitsource.Tag) {
	t.Helper()
	url, signers := firmwareRepoBuilding(t, script)
	policy, err := gitsource.SSHPolicy(signers)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gitsource.Open(gitsource.Config{URL: url, Dir: filepath.Join(t.TempDir(), "cache"), Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	tags, err := repo.Tags()
	if err != nil {
		t.Fatal(err)
	}
	return url, repo, tags
}

// failingObjects is object storage that fails every image upload after
// reading part of it, as a storage outage mid-upload would.
type failingObjects struct{ bundle.Dir }

func (o failingObjects) PutObject(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasPrefix(key, "blobs/") {
		io.CopyN(io.Discard, r, size/2)
		return errors.New("storage is down")
	}
	return o.Dir.PutObject(ctx, key, r, size)
}

// TestBuildStorageFails checks that a build whose upload fails, while the
// bundle streams into storage, fails with the storage's error and stores
// no envelope: no release is visible.
func TestBuildStorageFails(t *testing.T) {
	ctx := context.Background()
	url, repo, tags := fetchedRepo(t)
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	b := &builder.Builder{Repo: repo, Store: st, Objects: failingObjects{bundle.Dir(dir)}, Signer: trust.Sealer(tr.Targets),
		Verifier: tr.Verifier(t), RepoURL: url, Owner: "replica-1"}
	for _, tg := range tags {
		if tg.Name != "v1.0.0" {
			continue
		}
		if _, err := b.Build(ctx, tg); err == nil || !strings.Contains(err.Error(), "storage is down") {
			t.Errorf("Build with storage down: %v, want the storage's error", err)
		}
	}
	envelopes, _ := filepath.Glob(filepath.Join(dir, "bundles", "*"))
	if len(envelopes) > 0 {
		t.Errorf("envelopes stored by a failed build: %v", envelopes)
	}
}
