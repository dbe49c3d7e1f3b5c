package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChannels(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		created := clk.Now()
		for _, c := range []Channel{
			{Name: "staging", Release: "1.5.0", State: Active},
			{Name: "production", Release: "1.4.0", Wave: 2, State: Paused, Reason: "holiday freeze", WaveStarted: created.Add(-time.Hour)},
		} {
			if err := s.PutChannel(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		want := []Channel{
			{Name: "production", Release: "1.4.0", Wave: 2, State: Paused, Reason: "holiday freeze", WaveStarted: created.Add(-time.Hour), Updated: created},
			{Name: "staging", Release: "1.5.0", State: Active, WaveStarted: created, Updated: created},
		}
		got, err := s.Channels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Channels (-want +got):\n%s", diff)
		}

		clk.Advance(time.Minute)
		if err := s.SetRolloutState(ctx, "production", Active, "freeze over"); err != nil {
			t.Fatal(err)
		}
		want[0].State, want[0].Reason, want[0].Updated = Active, "freeze over", clk.Now()
		gotProduction, err := s.Channel(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[0], gotProduction); diff != "" {
			t.Errorf("Channel(production) after resume (-want +got):\n%s", diff)
		}

		// Promotion replaces the rollout.
		clk.Advance(time.Minute)
		if err := s.PutChannel(ctx, Channel{Name: "staging", Release: "1.6.0", State: Active, Reason: "promoted"}); err != nil {
			t.Fatal(err)
		}
		gotStaging, err := s.Channel(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		wantStaging := Channel{Name: "staging", Release: "1.6.0", State: Active, Reason: "promoted", WaveStarted: clk.Now(), Updated: clk.Now()}
		if diff := cmp.Diff(wantStaging, gotStaging); diff != "" {
			t.Errorf("Channel(staging) after promotion (-want +got):\n%s", diff)
		}

		_, err = s.Channel(ctx, "nightly")
		wantNotFound(t, "Channel(nightly)", err)
		wantNotFound(t, "SetRolloutState(nightly)", s.SetRolloutState(ctx, "nightly", Paused, ""))
		if err := s.SetRolloutState(ctx, "staging", "STOPPED", ""); err == nil {
			t.Error("SetRolloutState to STOPPED succeeded, want an error")
		}
		if err := s.PutChannel(ctx, Channel{Name: "beta", Release: "1.6.0"}); err == nil {
			t.Error("PutChannel without a state succeeded, want an error")
		}
	})
}

// TestSwapChannel writes a channel's rollout only over the state it was
// read in: a decision made on a state that changed meanwhile is refused, and
// of replicas deciding at once one writes.
func TestSwapChannel(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		first := Channel{Name: "production", Release: "1.4.0", Wave: 0, State: Active, Engine: `{"wave":0}`}
		if ok, err := s.SwapChannel(ctx, Channel{Name: "production"}, first); !ok || err != nil {
			t.Fatalf("SwapChannel of a new channel = %t, %v; want true", ok, err)
		}
		if ok, err := s.SwapChannel(ctx, Channel{Name: "production"}, first); ok || err != nil {
			t.Fatalf("SwapChannel of a new channel that another wrote = %t, %v; want false", ok, err)
		}
		read := func() Channel {
			t.Helper()
			c, err := s.Channel(ctx, "production")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		advance := func(c Channel) Channel {
			c.Wave++
			c.Engine = fmt.Sprintf(`{"wave":%d}`, c.Wave)
			c.WaveStarted = time.Time{}
			return c
		}
		was := read()
		clk.Advance(time.Minute)
		if ok, err := s.SwapChannel(ctx, was, advance(was)); !ok || err != nil {
			t.Fatalf("SwapChannel wave 0 → 1 = %t, %v; want true", ok, err)
		}
		if c := read(); c.Wave != 1 || !c.WaveStarted.Equal(clk.Now()) {
			t.Errorf("after the advance: wave %d started %v, want wave 1 started now (%v)", c.Wave, c.WaveStarted, clk.Now())
		}
		// The same decision, made on the state read before it, is refused:
		// the wave is not advanced twice, and a stale state does not set it back.
		if ok, err := s.SwapChannel(ctx, was, advance(was)); ok || err != nil {
			t.Errorf("SwapChannel on a stale read = %t, %v; want false", ok, err)
		}
		if ok, err := s.SwapChannel(ctx, was, was); ok || err != nil {
			t.Errorf("SwapChannel back to wave 0 on a stale read = %t, %v; want false", ok, err)
		}
		// A pause in between wins over an advance decided before it.
		was = read()
		if err := s.SetRolloutState(ctx, "production", Paused, "by operator"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SwapChannel(ctx, was, advance(was)); ok || err != nil {
			t.Errorf("SwapChannel over a pause = %t, %v; want false", ok, err)
		}
		if c := read(); c.Wave != 1 || c.State != Paused {
			t.Errorf("after the refused advance: wave %d state %s, want wave 1 PAUSED", c.Wave, c.State)
		}
		if _, err := s.SwapChannel(ctx, read(), Channel{Name: "staging", State: Active}); err == nil {
			t.Error("SwapChannel to another channel's name succeeded, want an error")
		}
		if _, err := s.SwapChannel(ctx, read(), Channel{Name: "production", State: "STOPPED"}); err == nil {
			t.Error("SwapChannel to state STOPPED succeeded, want an error")
		}

		// Of replicas deciding at once on the same read, one writes.
		if err := s.SetRolloutState(ctx, "production", Active, "resumed"); err != nil {
			t.Fatal(err)
		}
		was = read()
		var swapped atomic.Int32
		race(8, func(int) {
			ok, err := s.SwapChannel(ctx, was, advance(was))
			if err != nil {
				t.Error(err)
			}
			if ok {
				swapped.Add(1)
			}
		})
		if got := swapped.Load(); got != 1 {
			t.Errorf("%d of 8 racing SwapChannel calls wrote, want 1", got)
		}
		if c := read(); c.Wave != 2 {
			t.Errorf("after the race: wave %d, want 2", c.Wave)
		}
	})
}

// TestChannelEngineState keeps the rollout engine's opaque state through a
// put and a pause.
func TestChannelEngineState(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		engine := `{"digest":"sha256:ab","wave":2,"state":"complete"}`
		if err := s.PutChannel(ctx, Channel{Name: "production", Release: "1.4.0", Wave: 2, State: Active, Engine: engine}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRolloutState(ctx, "production", Paused, "by operator"); err != nil {
			t.Fatal(err)
		}
		c, err := s.Channel(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		if c.Engine != engine || c.State != Paused {
			t.Errorf("channel = %+v, want engine %s and state PAUSED", c, engine)
		}
	})
}
