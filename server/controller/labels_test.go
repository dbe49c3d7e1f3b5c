package controller_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/server/controller"
	"github.com/gitfleet/gitfleet/server/recipe"
)

// TestLabelSelector: a channel that selects by labels takes exactly the
// devices reporting every one of them, ahead of a later channel selecting
// by device type, which takes the rest.
func TestLabelSelector(t *testing.T) {
	ctx := context.Background()
	st, _, devices := newFleet(t, filepath.Join(t.TempDir(), "fleet.db"))
	fl, err := recipe.ParseFleet("fleet.yaml", []byte(`fleet: acme
channels:
  canary:
    release: v1.4.0
    devices:
      labels: {ring: canary, site: lab}
  production:
    release: v1.4.0
    devices:
      device_types: [acme-gw-v2]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"canary": 0, "production": 0}
	for i := range devices {
		switch i % 4 {
		case 0:
			devices[i].Labels = map[string]string{"ring": "canary", "site": "lab"}
		case 1:
			devices[i].Labels = map[string]string{"ring": "canary", "site": "lab", "board_rev": "b2"}
		case 2:
			devices[i].Labels = map[string]string{"ring": "canary"} // not every label
		case 3:
			devices[i].Labels = map[string]string{"ring": "Canary", "site": "lab"} // values are case-sensitive
		}
		if i%4 < 2 {
			want["canary"]++
		} else {
			want["production"]++
		}
	}
	if _, err := st.PutDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	c := &controller.Controller{Fleet: func() (*recipe.Fleet, error) { return fl, nil }, Store: st, Advertise: &adverts{}, Locate: locator{},
		Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	if err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range c.Statuses() {
		if s.Result == nil {
			t.Fatalf("channel %s has no rollout: %s", s.Channel, s.Waiting)
		}
		got[s.Channel] = s.Result.Total.Targeted
	}
	for ch, n := range want {
		if got[ch] != n {
			t.Errorf("channel %s has %d devices, want %d (all: %v)", ch, got[ch], n, got)
		}
	}
}
