// Package builder turns a signed release tag into a signed firmware bundle
// in object storage and a release in the fleet database: verify the tag's
// signature, check out its commit, run the recipe of its gitfleet.yaml,
// make the bundle with the tag's Git provenance, sign it with the targets
// key, store it in the object layout, record the release.
//
// Each tag is built once, even with several server replicas on one
// database: a replica builds only the tags it claimed in the store, and
// renews its claim's lease while it builds, so a build longer than the lease
// is not taken over while its owner is alive. A replica killed mid-build
// leaves no visible release (objects become visible envelope last; the
// release is recorded after them) and stops renewing; once the lease has run
// out, Retry on any replica, whatever its name, builds the tag again.
package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/server/gitsource"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/store"
)

// Repo is the firmware repository, as the builder needs it.
type Repo interface {
	Verify(t gitsource.Tag) (gitsource.Signer, error)
	Checkout(ctx context.Context, t gitsource.Tag, dir string) error
}

// Store is the fleet database, as the builder needs it.
type Store interface {
	ClaimBuild(ctx context.Context, tag, owner string, lease time.Duration) (bool, error)
	RenewBuild(ctx context.Context, tag, owner string, lease time.Duration) error
	AbandonBuild(ctx context.Context, tag, owner string) error
	StaleBuilds(ctx context.Context) ([]store.Release, error)
	FinishBuild(ctx context.Context, owner string, r store.Release) error
	Releases(ctx context.Context) ([]store.Release, error)
}

// Objects is object storage, as the builder needs it.
type Objects interface {
	bundle.ObjectWriter
}

// A Builder builds release tags.
type Builder struct {
	Repo    Repo
	Store   Store
	Objects Objects
	// Signer signs bundle manifests: the targets role's key(s).
	Signer bundle.Signer
	// Verifier checks what Signer signed, before anything is stored.
	Verifier bundle.Verifier
	// RepoURL is recorded as the bundles' provenance.
	RepoURL string
	// Owner names this replica in build claims; Lease is how long a claim
	// lasts without renewal (default DefaultLease). Build renews it every
	// third of Lease, so Lease bounds how long a dead replica's tag waits
	// for another, not how long a build may take.
	Owner string
	Lease time.Duration
	// WorkDir holds checkouts and bundles while they are built; default the
	// system's temp dir.
	WorkDir string
	Log     *slog.Logger

	// mu makes Build build one tag at a time: a replica's claim is renewed by
	// its name, so two of its own builds of one tag would both hold it.
	mu sync.Mutex
}

// DefaultLease is Builder.Lease when it is zero.
const DefaultLease = 2 * time.Minute

// ErrNotClaimed is returned by Build when another replica builds the tag,
// or its build already finished.
var ErrNotClaimed = errors.New("tag not claimed")

// Build builds t if this replica can claim it, one tag at a time. A build that fails is
// recorded as failed with its reason and log, and not retried: a tag is
// immutable, so a new tag is the fix.
func (b *Builder) Build(ctx context.Context, t gitsource.Tag) (store.Release, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lease := b.lease()
	ok, err := b.Store.ClaimBuild(ctx, t.Name, b.Owner, lease)
	if err != nil {
		return store.Release{}, fmt.Errorf("claim build of %s: %w", t.Name, err)
	}
	if !ok {
		return store.Release{}, fmt.Errorf("%s: %w", t.Name, ErrNotClaimed)
	}
	log := b.logger().With("release", t.Version)
	log.Info("build started", "tag", t.Name, "commit", t.Commit)
	var buildLog bytes.Buffer
	rel, berr := b.buildRenewing(ctx, t, &buildLog)
	rel.Tag = t.Name
	if logKey, err := b.putLog(ctx, t, buildLog.Bytes()); err == nil {
		rel.BuildLog = logKey
	} else {
		log.Warn("store build log", "err", err)
	}
	if berr != nil {
		if ctx.Err() != nil {
			// Shutdown: hand the claim over, so that a replica (or this
			// one, restarted) builds the tag without waiting for the lease.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := b.Store.AbandonBuild(actx, t.Name, b.Owner); err != nil {
				log.Warn("hand the build over at shutdown; it is retried once its lease runs out", "tag", t.Name, "err", err)
			}
			return store.Release{}, ctx.Err()
		}
		if errors.Is(berr, store.ErrClaimLost) {
			// Another replica took the tag over: its build counts.
			return store.Release{}, fmt.Errorf("build %s: %w", t.Name, berr)
		}
		rel.BuildState, rel.BuildError = store.Failed, oneLine(berr.Error())
		log.Error("build failed", "tag", t.Name, "err", berr)
	} else {
		rel.BuildState = store.Succeeded
		log.Info("build succeeded", "tag", t.Name, "bundle", rel.BundleDigest)
	}
	if err := b.Store.FinishBuild(ctx, b.Owner, rel); err != nil {
		return store.Release{}, fmt.Errorf("record build of %s: %w", t.Name, err)
	}
	if berr != nil {
		return rel, fmt.Errorf("build %s: %w", t.Name, berr)
	}
	return rel, nil
}

// buildRenewing builds t while renewing the claim on it. If the claim is
// lost (this replica stalled past its lease and another took the tag over)
// the build stops with store.ErrClaimLost. A renewal that fails otherwise is
// tried again at the next tick: the lease outlasts two failures.
func (b *Builder) buildRenewing(ctx context.Context, t gitsource.Tag, log io.Writer) (store.Release, error) {
	lease := b.lease()
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-tick.C:
			}
			err := b.Store.RenewBuild(bctx, t.Name, b.Owner, lease)
			switch {
			case errors.Is(err, store.ErrClaimLost):
				cancel(err)
				return
			case err != nil && bctx.Err() == nil:
				b.logger().Warn("renew build claim", "tag", t.Name, "err", err)
			}
		}
	}()
	rel, err := b.build(bctx, t, log)
	cancel(nil)
	<-renewed
	if cause := context.Cause(bctx); errors.Is(cause, store.ErrClaimLost) {
		return rel, cause
	}
	return rel, err
}

// Retry builds the tags among tags whose build claim went stale: a replica
// claimed them and stopped renewing its lease (it died or was killed
// mid-build). Whatever that replica's name, the tag is claimed again and, of
// replicas retrying at once, built by exactly one. Tags the caller leaves out
// of tags (deleted, or moved since they were first seen) are not rebuilt.
// Retry returns the releases it recorded, succeeded or failed.
func (b *Builder) Retry(ctx context.Context, tags []gitsource.Tag) ([]store.Release, error) {
	stale, err := b.Store.StaleBuilds(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]gitsource.Tag, len(tags))
	for _, t := range tags {
		byName[t.Name] = t
	}
	var out []store.Release
	for _, r := range stale {
		t, ok := byName[r.Tag]
		if !ok {
			continue
		}
		b.logger().Warn("retrying a build whose claim ran out", "tag", t.Name, "owner", r.BuildOwner)
		rel, err := b.Build(ctx, t)
		switch {
		case errors.Is(err, ErrNotClaimed):
			continue // another replica retries it
		case ctx.Err() != nil:
			return out, ctx.Err()
		case rel.Tag == "":
			return out, err
		}
		// A failed build is recorded, which is its outcome.
		out = append(out, rel)
	}
	return out, nil
}

func (b *Builder) lease() time.Duration {
	if b.Lease > 0 {
		return b.Lease
	}
	return DefaultLease
}

func (b *Builder) build(ctx context.Context, t gitsource.Tag, log io.Writer) (store.Release, error) {
	rel := store.Release{Tag: t.Name, Version: t.Version, TagObject: t.Object, Commit: t.Commit}
	if t.Commit == "" {
		return rel, errors.New("the tag does not name a commit")
	}
	signer, err := b.Repo.Verify(t)
	if err != nil {
		return rel, fmt.Errorf("tag signature: %w", err)
	}
	rel.Signer = signer.String()
	work, err := os.MkdirTemp(b.WorkDir, "gitfleet-build-*")
	if err != nil {
		return rel, err
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "src")
	if err := b.Repo.Checkout(ctx, t, dir); err != nil {
		return rel, fmt.Errorf("check out %s: %w", t.Commit, err)
	}
	r, err := recipe.Load(dir)
	if err != nil {
		return rel, err
	}
	rel.Product, rel.DeviceTypes = r.Product, r.DeviceTypes
	fmt.Fprintf(log, "gitfleet: building %s (%s) at %s\n", t.Name, r.Product, t.Commit)
	images, err := recipe.Build(ctx, r, recipe.Checkout{Dir: dir, Time: t.CommitTime, Tag: t.Name, Commit: t.Commit}, log)
	if err != nil {
		return rel, err
	}
	counter, err := b.counter(ctx, r.RollbackIndex)
	if err != nil {
		return rel, err
	}
	rel.Counter = int64(counter)
	var files []bundle.ImageFile
	for _, im := range images {
		files = append(files, bundle.ImageFile{Name: im.Name, Slot: im.Slot, Path: im.Path})
	}
	// The bundle streams from the writer through the verifying reader into
	// object storage: what is stored is what was signed, and the bundle is
	// never written whole into the build directory, which would cost a write
	// and a read of every image byte (BenchmarkTagToAdvertised).
	pr, pw := io.Pipe()
	var m *bundle.Manifest
	created := make(chan error, 1)
	go func() {
		var err error
		m, err = bundle.Create(ctx, pw, bundle.Release{
			Product: r.Product, Version: t.Version, Counter: counter, DeviceTypes: r.DeviceTypes,
			Provenance: &bundle.Provenance{Repository: b.RepoURL, Tag: t.Name, TagObject: t.Object, Commit: t.Commit, Signer: rel.Signer},
		}, files, b.Signer, nil)
		pw.CloseWithError(err)
		created <- err
	}()
	o, envelope, err := explode(ctx, pr, b.Verifier, b.Objects)
	// Unblocks the writer if the reader stopped early.
	pr.CloseWithError(errUnread)
	if cerr := <-created; cerr != nil && !errors.Is(cerr, errUnread) {
		return rel, fmt.Errorf("create bundle: %w", cerr)
	}
	if err != nil {
		return rel, err
	}
	d, _ := m.Digest()
	rel.BundleDigest = "sha256:" + d.String()
	rel.BundleSize = int64(len(envelope)) + m.PayloadSize()
	rel.ObjectKeys = map[string]string{"envelope": o.Envelope}
	for name, key := range o.Images {
		rel.ObjectKeys["image/"+name] = key
	}
	return rel, nil
}

// errUnread tells the bundle's writer that its reader stopped.
var errUnread = errors.New("the bundle was not read to its end")

// explode reads the bundle from src through the verifying reader, stores
// its objects, reads src to its end and returns the objects and the
// bundle's envelope.
func explode(ctx context.Context, src io.Reader, v bundle.Verifier, objects Objects) (bundle.Objects, []byte, error) {
	rd, err := bundle.NewReader(ctx, src, v, bundle.Policy{})
	if err != nil {
		return bundle.Objects{}, nil, fmt.Errorf("verify the new bundle: %w", err)
	}
	defer rd.Close()
	o, err := bundle.Explode(ctx, rd, objects)
	if err != nil {
		return o, nil, fmt.Errorf("store bundle: %w", err)
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return o, nil, fmt.Errorf("read the new bundle: %w", err)
	}
	return o, rd.Envelope(), nil
}

// counter returns the release counter of a new release: the highest so
// far, raised to the recipe's rollback index, and at least 1. Counters
// never go down from one build to the next, but they rise only when a
// release asks (rollback_index), so that an ordinary rollback — `git
// revert` of a promotion — is not a downgrade the devices refuse.
func (b *Builder) counter(ctx context.Context, rollbackIndex int) (uint64, error) {
	rels, err := b.Store.Releases(ctx)
	if err != nil {
		return 0, fmt.Errorf("release counter: %w", err)
	}
	top := max(int64(rollbackIndex), 1)
	for _, r := range rels {
		top = max(top, r.Counter)
	}
	return uint64(top), nil
}

func (b *Builder) putLog(ctx context.Context, t gitsource.Tag, log []byte) (string, error) {
	key := "logs/" + t.Name + "-" + shortObject(t.Object) + ".log"
	return key, b.Objects.PutObject(ctx, key, bytes.NewReader(log), int64(len(log)))
}

func (b *Builder) logger() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.DiscardHandler)
}

func shortObject(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
