package controller_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/server/controller"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

// interleaved is a replica's store that lets the other replica act once
// between this replica's read of a channel and its write.
type interleaved struct {
	controller.Store
	between func()
}

func (s *interleaved) SwapChannel(ctx context.Context, was, next store.Channel) (bool, error) {
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return s.Store.SwapChannel(ctx, was, next)
}

// TestReplicasDoNotOverwriteEachOther runs two controllers, each with its
// own connection to one database, and lets one act between the other's read
// and write: an operator's pause through one replica is not undone by the
// other's advance decided before it, and of two replicas deciding the same
// advance the wave moves once.
func TestReplicasDoNotOverwriteEachOther(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.db")
	stA, fl, devices := newFleet(t, path)
	stB, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fleet := func() (*recipe.Fleet, error) { return fl, nil }
	racy := &interleaved{Store: stA}
	advA, advB := &adverts{}, &adverts{}
	a := &controller.Controller{Fleet: fleet, Store: racy, Advertise: advA, Locate: locator{}, Now: clock}
	b := &controller.Controller{Fleet: fleet, Store: stB, Advertise: advB, Locate: locator{}, Now: clock}
	step := func(c *controller.Controller) {
		t.Helper()
		if err := c.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step(a)
	step(b)
	wave0 := advA.last().GetWave()
	for i, d := range devices {
		if wave0.Includes(gitfleetv1.WaveBucket("acme", d.ID)) {
			devices[i].Version, devices[i].BundleDigest = "1.4.0", digest
		}
	}
	if _, err := stA.PutDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)

	// Replica A decides to advance wave 0; before it writes, an operator
	// pauses the rollout through replica B.
	racy.between = func() {
		if err := b.Command(ctx, "production", rollout.Pause, "change freeze"); err != nil {
			t.Fatal(err)
		}
	}
	step(a)
	sc, err := stB.Channel(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	if sc.State != store.Paused || sc.Wave != 0 {
		t.Fatalf("after a pause between replica A's read and write: channel %s at wave %d (%s), want PAUSED at wave 0", sc.State, sc.Wave, sc.Reason)
	}
	if got := advA.last(); got.GetWave().GetIndex() != 0 || got.GetRolloutState() != gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE {
		t.Errorf("replica A advertised %v after its decision was refused, want nothing new", got)
	}
	step(a)
	if got := advA.last().GetRolloutState(); got != gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED {
		t.Errorf("replica A's next step advertised %v, want the pause", got)
	}

	// Resumed, both decide to advance wave 0: B writes first, A's write of
	// the same decision is refused, and the wave moved once.
	if err := b.Command(ctx, "production", rollout.Resume, "freeze over"); err != nil {
		t.Fatal(err)
	}
	racy.between = func() { step(b) }
	now = now.Add(time.Minute)
	step(a)
	after, err := stB.Channel(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	if after.Wave != 1 || after.State != store.Active {
		t.Fatalf("after both replicas stepped: channel %s at wave %d (%s), want ACTIVE at wave 1", after.State, after.Wave, after.Reason)
	}
	if got := advB.last().GetWave().GetIndex(); got != 1 {
		t.Errorf("replica B advertised wave %d, want 1", got)
	}
}
