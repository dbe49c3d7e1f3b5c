package store

import (
	"context"
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

func TestAdvanceWave(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		if err := s.PutChannel(ctx, Channel{Name: "production", Release: "1.4.0", Wave: 1, State: Active}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			name     string
			state    RolloutState // set first, if not empty
			release  string
			from     int
			want     bool
			wantWave int
		}{
			{"wrong wave", "", "1.4.0", 0, false, 1},
			{"wrong release", "", "1.3.0", 1, false, 1},
			{"advances", "", "1.4.0", 1, true, 2},
			{"same decision again", "", "1.4.0", 1, false, 2},
			{"paused", Paused, "1.4.0", 2, false, 2},
			{"halted", Halted, "1.4.0", 2, false, 2},
			{"aborted", Aborted, "1.4.0", 2, false, 2},
			{"resumed", Active, "1.4.0", 2, true, 3},
		} {
			if step.state != "" {
				if err := s.SetRolloutState(ctx, "production", step.state, step.name); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(time.Minute)
			got, err := s.AdvanceWave(ctx, "production", step.release, step.from)
			if err != nil {
				t.Fatalf("%s: AdvanceWave: %v", step.name, err)
			}
			if got != step.want {
				t.Errorf("%s: AdvanceWave(%s, %d) = %t, want %t", step.name, step.release, step.from, got, step.want)
			}
			c, err := s.Channel(ctx, "production")
			if err != nil {
				t.Fatal(err)
			}
			if c.Wave != step.wantWave {
				t.Errorf("%s: wave = %d, want %d", step.name, c.Wave, step.wantWave)
			}
			if step.want && !c.WaveStarted.Equal(clk.Now()) {
				t.Errorf("%s: wave started %v, want now (%v)", step.name, c.WaveStarted, clk.Now())
			}
		}

		// Of replicas deciding at once, one advances the wave.
		var advanced atomic.Int32
		race(8, func(int) {
			ok, err := s.AdvanceWave(ctx, "production", "1.4.0", 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				advanced.Add(1)
			}
		})
		if got := advanced.Load(); got != 1 {
			t.Errorf("%d of 8 racing AdvanceWave calls advanced, want 1", got)
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
