package builder_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/builder"
	"github.com/gitfleet/gitfleet/server/gitsource"
	"github.com/gitfleet/gitfleet/server/store"
)

// eachEngine runs test on SQLite and on the test PostgreSQL server, each
// with a fresh database.
func eachEngine(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite:"+filepath.Join(t.TempDir(), "fleet.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, testenv.Postgres(t)) })
}

// replica is one server replica's builder on the shared database dsn.
func replica(t *testing.T, dsn, owner string, lease time.Duration, repo *gitsource.Repo, objects bundle.Dir, tr *bundletest.Trust) (*builder.Builder, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &builder.Builder{Repo: repo, Store: st, Objects: objects, Signer: trust.Sealer(tr.Targets), Verifier: tr.Verifier(t),
		Owner: owner, Lease: lease}, st
}

func tagNamed(t *testing.T, tags []gitsource.Tag, name string) gitsource.Tag {
	t.Helper()
	for _, tg := range tags {
		if tg.Name == name {
			return tg
		}
	}
	t.Fatalf("no tag %s", name)
	return gitsource.Tag{}
}

// A replica that claimed a tag and died (it never renews) does not block
// the tag: once its lease ran out, another replica with another name builds
// it, exactly once, and no release is visible before that.
func TestRetryAfterOwnerDied(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		_, repo, tags := fetchedRepo(t)
		tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
		objects := bundle.Dir(t.TempDir())
		_, dead := replica(t, dsn, "replica-a", time.Minute, repo, objects, tr)
		b, st := replica(t, dsn, "replica-b", time.Minute, repo, objects, tr)
		c, _ := replica(t, dsn, "replica-c", time.Minute, repo, objects, tr)
		v1 := tagNamed(t, tags, "v1.0.0")

		// replica-a claims v1.0.0 and dies before it renews or finishes.
		if ok, err := dead.ClaimBuild(ctx, v1.Name, "replica-a", time.Second); err != nil || !ok {
			t.Fatalf("ClaimBuild by replica-a = %t, %v", ok, err)
		}
		var built []store.Release
		deadline := time.Now().Add(time.Minute)
		for len(built) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no replica retried the tag of a dead replica")
			}
			if _, err := st.Release(ctx, v1.Version); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("release before the retry built it: err = %v, want ErrNotFound", err)
			}
			rels, err := b.Retry(ctx, []gitsource.Tag{v1})
			if err != nil {
				t.Fatalf("Retry: %v", err)
			}
			built = rels
			time.Sleep(50 * time.Millisecond)
		}
		if len(built) != 1 || built[0].Tag != v1.Name || built[0].BuildState != store.Succeeded {
			t.Fatalf("Retry built %+v, want v1.0.0 succeeded", built)
		}
		got, err := st.Release(ctx, v1.Version)
		if err != nil {
			t.Fatal(err)
		}
		if got.BuildOwner != "replica-b" || got.BuildState != store.Succeeded {
			t.Errorf("release owner, state = %s, %s; want replica-b, succeeded", got.BuildOwner, got.BuildState)
		}
		for _, r := range []*builder.Builder{b, c} {
			if rels, err := r.Retry(ctx, tags); err != nil || len(rels) != 0 {
				t.Errorf("Retry by %s after the build = %+v, %v; want nothing built", r.Owner, rels, err)
			}
			if _, err := r.Build(ctx, v1); !errors.Is(err, builder.ErrNotClaimed) {
				t.Errorf("Build by %s after the build: err = %v, want ErrNotClaimed", r.Owner, err)
			}
		}
	})
}

// A build that outlives its lease but whose owner keeps renewing it is not
// taken over: it is built once, by its owner.
func TestLongBuildKeepsItsClaim(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gate, repo, tags, tr, objects := gatedRepo(t)
		const lease = 600 * time.Millisecond
		a, st := replica(t, dsn, "replica-a", lease, repo, objects, tr)
		b, _ := replica(t, dsn, "replica-b", lease, repo, objects, tr)
		v1 := tagNamed(t, tags, "v1.0.0")

		done := make(chan error, 1)
		go func() {
			_, err := a.Build(ctx, v1)
			done <- err
		}()
		t.Cleanup(func() { touch(t, gate); <-done })

		// Wait until the build has outlived three leases, retrying on
		// replica-b all the while: it must find nothing to build.
		var first time.Time
		deadline := time.Now().Add(time.Minute)
		for {
			if time.Now().After(deadline) {
				t.Fatal("the build's claim was not renewed past three leases")
			}
			r, err := st.ReleaseByTag(ctx, v1.Name)
			if err == nil && first.IsZero() {
				first = r.BuildLeaseUntil
			}
			if err == nil && r.BuildLeaseUntil.After(first.Add(3*lease)) {
				break
			}
			rels, err := b.Retry(ctx, tags)
			if err != nil || len(rels) != 0 {
				t.Fatalf("Retry by replica-b during replica-a's build = %+v, %v; want nothing built", rels, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		touch(t, gate)
		if err := <-done; err != nil {
			t.Fatalf("replica-a's build: %v", err)
		}
		done <- nil // for the cleanup
		got, err := st.Release(ctx, v1.Version)
		if err != nil {
			t.Fatal(err)
		}
		if got.BuildOwner != "replica-a" || got.BuildState != store.Succeeded {
			t.Errorf("release owner, state = %s, %s; want replica-a, succeeded", got.BuildOwner, got.BuildState)
		}
		if rels, err := b.Retry(ctx, tags); err != nil || len(rels) != 0 {
			t.Errorf("Retry by replica-b after the build = %+v, %v; want nothing built", rels, err)
		}
	})
}

// A replica shut down mid-build hands its claim over: another replica
// builds the tag at once, not after the lease (a minute here) runs out.
func TestShutdownHandsTheBuildOver(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gate, repo, tags, tr, objects := gatedRepo(t)
		a, st := replica(t, dsn, "replica-a", time.Minute, repo, objects, tr)
		b, _ := replica(t, dsn, "replica-b", time.Minute, repo, objects, tr)
		v1 := tagNamed(t, tags, "v1.0.0")

		actx, shutdown := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := a.Build(actx, v1)
			done <- err
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if r, err := st.ReleaseByTag(ctx, v1.Name); err == nil && r.BuildOwner == "replica-a" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("replica-a never claimed the tag")
			}
			time.Sleep(20 * time.Millisecond)
		}
		shutdown()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("replica-a's build at shutdown: %v, want context.Canceled", err)
		}
		touch(t, gate)
		rels, err := b.Retry(ctx, tags)
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) != 1 || rels[0].Tag != v1.Name || rels[0].BuildState != store.Succeeded {
			t.Fatalf("Retry by replica-b right after replica-a shut down built %+v; want v1.0.0, succeeded", rels)
		}
		if got, err := st.Release(ctx, v1.Version); err != nil || got.BuildOwner != "replica-b" {
			t.Errorf("release %+v, %v; want built by replica-b", got, err)
		}
	})
}

// gatedRepo returns a fetched repository whose build waits until the file
// gate exists, and the trust and object store its replicas share.
func gatedRepo(t *testing.T) (gate string, repo *gitsource.Repo, tags []gitsource.Tag, tr *bundletest.Trust, objects bundle.Dir) {
	t.Helper()
	gate = filepath.Join(t.TempDir(), "go-on")
	script := fmt.Sprintf("#!/bin/sh\nset -e\nwhile [ ! -e %s ]; do sleep 0.05; done\n", gate) + goodBuild[len("#!/bin/sh\nset -e\n"):]
	_, repo, tags = fetchedRepoBuilding(t, script)
	tr = bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	return gate, repo, tags, tr, bundle.Dir(t.TempDir())
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := writeFile(path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(path string) error { return os.WriteFile(path, nil, 0o644) }
