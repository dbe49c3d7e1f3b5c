package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Of many replicas claiming a tag at once, with many goroutines each,
// exactly one wins.
func TestClaimBuildRace(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		const nReplicas, perReplica = 4, 8
		stores := replicas(t, dsn, nReplicas)
		for round, tag := range []string{"v1.0.0", "v1.1.0", "v1.2.0"} {
			var wins atomic.Int32
			var winner atomic.Value
			race(nReplicas*perReplica, func(i int) {
				owner := fmt.Sprintf("replica-%d-goroutine-%d", i%nReplicas, i)
				ok, err := stores[i%nReplicas].ClaimBuild(context.Background(), tag, owner, time.Minute)
				if err != nil {
					t.Errorf("round %d: ClaimBuild by %s: %v", round, owner, err)
					return
				}
				if ok {
					wins.Add(1)
					winner.Store(owner)
				}
			})
			if got, want := wins.Load(), int32(1); got != want {
				t.Fatalf("round %d: %d claims of %s won, want %d", round, got, tag, want)
			}
			r, err := stores[0].ReleaseByTag(context.Background(), tag)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.BuildOwner, winner.Load().(string); got != want {
				t.Errorf("round %d: build owner = %q, want the winner %q", round, got, want)
			}
		}
	})
}

// A claim holds until its lease runs out; its owner renews it; a finished
// build is never claimed again.
func TestClaimBuildLease(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := openStore(t, dsn), openStore(t, dsn)
		clk := newClock(a, b)
		const lease = time.Minute
		steps := []struct {
			name    string
			advance time.Duration
			s       *Store
			owner   string
			want    bool
		}{
			{"first claim wins", 0, a, "a", true},
			{"another replica waits", 30 * time.Second, b, "b", false},
			{"owner renews", 0, a, "a", true}, // the lease now runs to 90 s
			{"renewed lease holds", 50 * time.Second, b, "b", false},
			{"another replica takes over an expired lease", 10 * time.Second, b, "b", true},
			{"old owner lost it", 0, a, "a", false},
		}
		for _, st := range steps {
			clk.Advance(st.advance)
			got, err := st.s.ClaimBuild(ctx, "v2.0.0", st.owner, lease)
			if err != nil {
				t.Fatalf("%s: ClaimBuild: %v", st.name, err)
			}
			if got != st.want {
				t.Errorf("%s: ClaimBuild by %s = %t, want %t", st.name, st.owner, got, st.want)
			}
		}

		err := a.FinishBuild(ctx, "a", Release{Tag: "v2.0.0", Version: "2.0.0", BuildState: Succeeded})
		if !errors.Is(err, ErrClaimLost) {
			t.Errorf("FinishBuild by the replica that lost the claim: got %v, want ErrClaimLost", err)
		}
		if err := b.FinishBuild(ctx, "b", Release{Tag: "v2.0.0", Version: "2.0.0", BuildState: Succeeded}); err != nil {
			t.Fatalf("FinishBuild by the owner: %v", err)
		}
		clk.Advance(time.Hour)
		for _, owner := range []string{"a", "b"} {
			if got, err := a.ClaimBuild(ctx, "v2.0.0", owner, lease); err != nil || got {
				t.Errorf("ClaimBuild of a built tag by %s = %t, %v; want false, nil", owner, got, err)
			}
		}
		err = b.FinishBuild(ctx, "b", Release{Tag: "v2.0.0", Version: "2.0.0", BuildState: Succeeded})
		if !errors.Is(err, ErrClaimLost) {
			t.Errorf("second FinishBuild: got %v, want ErrClaimLost", err)
		}
	})
}

func TestFinishBuild(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		claimed := clk.Now()
		for _, tag := range []string{"v1.4.0", "v1.5.0-rc.1"} {
			if ok, err := s.ClaimBuild(ctx, tag, "replica-1", time.Hour); err != nil || !ok {
				t.Fatalf("ClaimBuild(%s) = %t, %v", tag, ok, err)
			}
			clk.Advance(time.Second)
		}
		built := Release{
			Tag:          "v1.4.0",
			Version:      "1.4.0",
			Counter:      14,
			Product:      "gateway",
			DeviceTypes:  []string{"rpi4", "imx8"},
			BundleDigest: "sha256:4d5e",
			BundleSize:   123456789,
			TagObject:    "a1b2c3",
			Commit:       "d4e5f6",
			Signer:       "SHA256:release-key",
			ObjectKeys:   map[string]string{"bundle": "releases/1.4.0/gateway.gfb", "targets": "tuf/targets.json"},
			BuildState:   Succeeded,
			BuildLog:     "logs/v1.4.0.txt",
		}
		if err := s.FinishBuild(ctx, "replica-1", built); err != nil {
			t.Fatal(err)
		}
		finished := clk.Now()
		clk.Advance(time.Second)
		failed := Release{Tag: "v1.5.0-rc.1", BuildState: Failed, BuildLog: "logs/v1.5.0-rc.1.txt", BuildError: "recipe exited with status 2"}
		if err := s.FinishBuild(ctx, "replica-1", failed); err != nil {
			t.Fatal(err)
		}

		want := built
		want.BuildOwner = "replica-1"
		want.BuildLeaseUntil = claimed.Add(time.Hour)
		want.Created = claimed
		want.Finished = finished
		got, err := s.Release(ctx, "1.4.0")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Release(1.4.0) (-want +got):\n%s", diff)
		}
		if got, err := s.ReleaseByTag(ctx, "v1.4.0"); err != nil || !cmp.Equal(got, want) {
			t.Errorf("ReleaseByTag(v1.4.0) = %+v, %v; want %+v", got, err, want)
		}

		gotFailed, err := s.ReleaseByTag(ctx, "v1.5.0-rc.1")
		if err != nil {
			t.Fatal(err)
		}
		if gotFailed.BuildState != Failed || gotFailed.BuildError != failed.BuildError || gotFailed.Version != "" {
			t.Errorf("failed build = %+v, want state failed, its error and no version", gotFailed)
		}
		if ok, err := s.ClaimBuild(ctx, "v1.5.0-rc.1", "replica-2", time.Hour); err != nil || ok {
			t.Errorf("ClaimBuild of a failed build = %t, %v; want false, nil", ok, err)
		}

		all, err := s.Releases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, r := range all {
			tags = append(tags, r.Tag)
		}
		if diff := cmp.Diff([]string{"v1.5.0-rc.1", "v1.4.0"}, tags); diff != "" {
			t.Errorf("Releases, newest first (-want +got):\n%s", diff)
		}

		_, err = s.Release(ctx, "9.9.9")
		wantNotFound(t, "Release(9.9.9)", err)
		_, err = s.ReleaseByTag(ctx, "v9.9.9")
		wantNotFound(t, "ReleaseByTag(v9.9.9)", err)
	})
}

func TestFinishBuildRejects(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, tag := range []string{"v1.0.0", "v1.0.0-again"} {
			if ok, err := s.ClaimBuild(ctx, tag, "r", time.Hour); err != nil || !ok {
				t.Fatalf("ClaimBuild(%s) = %t, %v", tag, ok, err)
			}
		}
		if err := s.FinishBuild(ctx, "r", Release{Tag: "v1.0.0", Version: "1.0.0", BuildState: Succeeded}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			r    Release
		}{
			{"no version", Release{Tag: "v1.0.0-again", BuildState: Succeeded}},
			{"still building", Release{Tag: "v1.0.0-again", Version: "1.0.1", BuildState: Building}},
			{"version taken", Release{Tag: "v1.0.0-again", Version: "1.0.0", BuildState: Succeeded}},
		} {
			if err := s.FinishBuild(ctx, "r", c.r); err == nil {
				t.Errorf("%s: FinishBuild succeeded, want an error", c.name)
			}
		}
		for _, c := range []struct {
			tag, owner string
			lease      time.Duration
		}{{"", "r", time.Hour}, {"v3", "", time.Hour}, {"v3", "r", 0}} {
			if _, err := s.ClaimBuild(ctx, c.tag, c.owner, c.lease); err == nil {
				t.Errorf("ClaimBuild(%q, %q, %v) succeeded, want an error", c.tag, c.owner, c.lease)
			}
		}
	})
}

// A renewed claim is not stale; one whose lease ran out unrenewed is, and
// any replica may take it over, after which its old owner cannot renew it.
func TestRenewAndStaleBuilds(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := openStore(t, dsn), openStore(t, dsn)
		clk := newClock(a, b)
		const lease = time.Minute
		stale := func() []string {
			t.Helper()
			rs, err := b.StaleBuilds(ctx)
			if err != nil {
				t.Fatalf("StaleBuilds: %v", err)
			}
			var tags []string
			for _, r := range rs {
				tags = append(tags, r.Tag)
			}
			return tags
		}
		if ok, err := a.ClaimBuild(ctx, "v3.0.0", "a", lease); err != nil || !ok {
			t.Fatalf("ClaimBuild = %t, %v", ok, err)
		}
		if got := stale(); len(got) != 0 {
			t.Errorf("stale builds of a fresh claim = %v, want none", got)
		}
		clk.Advance(50 * time.Second)
		if err := a.RenewBuild(ctx, "v3.0.0", "a", lease); err != nil {
			t.Fatalf("RenewBuild by the owner: %v", err)
		}
		clk.Advance(50 * time.Second) // past the first lease, within the renewed one
		if got := stale(); len(got) != 0 {
			t.Errorf("stale builds of a renewed claim = %v, want none", got)
		}
		if ok, err := b.ClaimBuild(ctx, "v3.0.0", "b", lease); err != nil || ok {
			t.Errorf("ClaimBuild of a renewed claim by another = %t, %v; want false, nil", ok, err)
		}
		clk.Advance(11 * time.Second)
		if got, want := stale(), []string{"v3.0.0"}; !cmp.Equal(got, want) {
			t.Errorf("stale builds after the lease ran out = %v, want %v", got, want)
		}
		if ok, err := b.ClaimBuild(ctx, "v3.0.0", "b", lease); err != nil || !ok {
			t.Fatalf("ClaimBuild of a stale claim by another = %t, %v; want true, nil", ok, err)
		}
		if got := stale(); len(got) != 0 {
			t.Errorf("stale builds after a takeover = %v, want none", got)
		}
		if err := a.RenewBuild(ctx, "v3.0.0", "a", lease); !errors.Is(err, ErrClaimLost) {
			t.Errorf("RenewBuild by the old owner: got %v, want ErrClaimLost", err)
		}
		if err := b.FinishBuild(ctx, "b", Release{Tag: "v3.0.0", Version: "3.0.0", BuildState: Succeeded}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if got := stale(); len(got) != 0 {
			t.Errorf("stale builds after the build finished = %v, want none", got)
		}
		if err := b.RenewBuild(ctx, "v3.0.0", "b", lease); !errors.Is(err, ErrClaimLost) {
			t.Errorf("RenewBuild of a finished build: got %v, want ErrClaimLost", err)
		}

		// An owner shutting down abandons its claim: stale at once, and
		// another replica takes it over without waiting for the lease.
		if ok, err := a.ClaimBuild(ctx, "v3.1.0", "a", lease); err != nil || !ok {
			t.Fatalf("ClaimBuild = %t, %v", ok, err)
		}
		if err := b.AbandonBuild(ctx, "v3.1.0", "b"); !errors.Is(err, ErrClaimLost) {
			t.Errorf("AbandonBuild by another than the owner: got %v, want ErrClaimLost", err)
		}
		if err := a.AbandonBuild(ctx, "v3.1.0", "a"); err != nil {
			t.Fatalf("AbandonBuild by the owner: %v", err)
		}
		if got, want := stale(), []string{"v3.1.0"}; !cmp.Equal(got, want) {
			t.Errorf("stale builds after the owner abandoned its claim = %v, want %v", got, want)
		}
		if ok, err := b.ClaimBuild(ctx, "v3.1.0", "b", lease); err != nil || !ok {
			t.Errorf("ClaimBuild of an abandoned claim by another = %t, %v; want true, nil", ok, err)
		}
		if err := b.AbandonBuild(ctx, "v3.0.0", "b"); !errors.Is(err, ErrClaimLost) {
			t.Errorf("AbandonBuild of a finished build: got %v, want ErrClaimLost", err)
		}
	})
}
