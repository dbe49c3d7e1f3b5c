package controller_test

import (
	"context"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/server/controller"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/store"
)

// finishing is a store in which devices finish their updates right after
// a step has read the last page of devices, as they do many times a second
// in a big wave.
type finishing struct {
	controller.Store
	after func()
}

func (s *finishing) Devices(ctx context.Context, q store.DeviceQuery) (store.DevicePage, error) {
	page, err := s.Store.Devices(ctx, q)
	if f := s.after; err == nil && page.Next == "" && f != nil {
		s.after = nil
		f()
	}
	return page, err
}

// TestDevicesFinishingDuringAStep: a wave's devices finish while a step
// reads them, 2 failing and the rest confirming. The step must not count
// the 2 failures without the confirmed boots (2 failures and no successes
// halt the wave below its minimum sample); the next step sees them all, at
// a failure rate under the maximum, and advances.
func TestDevicesFinishingDuringAStep(t *testing.T) {
	ctx := context.Background()
	st, _, devices := newFleet(t, t.TempDir()+"/fleet.db")
	fl, err := recipe.ParseFleet("fleet.yaml", []byte(`fleet: acme
channels:
  production:
    release: v1.4.0
    devices: {device_types: [acme-gw-v2]}
    policy: {waves: [50, 100], wave_duration: 1s, max_failure_rate: 0.2, min_confirmed: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	adv := &adverts{}
	racy := &finishing{Store: st}
	c := &controller.Controller{Fleet: func() (*recipe.Fleet, error) { return fl, nil }, Store: racy, Advertise: adv, Locate: locator{},
		Now: func() time.Time { return now }}
	step := func() {
		t.Helper()
		now = now.Add(time.Minute)
		if err := c.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step() // starts the rollout at wave 0
	wave0 := adv.last().GetWave()
	var inWave0 []int
	for i, d := range devices {
		if wave0.Includes(gitfleetv1.WaveBucket("acme", d.ID)) {
			inWave0 = append(inWave0, i)
			devices[i].TargetVersion, devices[i].TargetBundleDigest, devices[i].UpdateState = "1.4.0", digest, "writing"
		}
	}
	if len(inWave0) < 12 {
		t.Fatalf("wave 0 holds %d devices; the test wants at least 12", len(inWave0))
	}
	if _, err := st.PutDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	racy.after = func() {
		for k, i := range inWave0 {
			d := &devices[i]
			if k < 2 {
				d.UpdateState, d.ErrorCode = "rolled_back", "ERROR_CODE_HEALTH_CHECK_FAILED"
				if _, err := st.RecordFailure(ctx, d.ID, digest); err != nil {
					t.Error(err)
				}
				continue
			}
			d.Version, d.BundleDigest, d.BootConfirmed, d.UpdateState = "1.4.0", digest, true, "idle"
		}
		if _, err := st.PutDevices(ctx, devices); err != nil {
			t.Error(err)
		}
	}
	step() // the devices finish as it reads them
	if racy.after != nil {
		t.Fatal("the step read no devices")
	}
	if sc, _ := st.Channel(ctx, "production"); sc.State != store.Active {
		t.Fatalf("after the devices finished during a step: %s (%s); want active: 2 failures were counted without the %d confirmed boots",
			sc.State, sc.Reason, len(inWave0)-2)
	}
	step()
	sc, _ := st.Channel(ctx, "production")
	if sc.State != store.Active || sc.Wave != 1 {
		t.Fatalf("next step: %s at wave %d (%s); want active at wave 1: 2 of %d failed is under the maximum of 20%%",
			sc.State, sc.Wave, sc.Reason, len(inWave0))
	}
	t.Log(sc.Reason)
}
