package controller_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/server/controller"
	"github.com/gitfleet/gitfleet/server/recipe"
	"github.com/gitfleet/gitfleet/server/rollout"
	"github.com/gitfleet/gitfleet/server/store"
)

const fleetYAML = `fleet: acme
channels:
  production:
    release: v1.4.0
    devices:
      device_types: [acme-gw-v2]
    policy:
      waves: [10, 100]
      wave_duration: 1s
      max_failure_rate: 0.2
      min_confirmed: 1
`

type adverts struct {
	channel []*gitfleetv1.ChannelState
	desired []*gitfleetv1.DesiredState
}

func (a *adverts) AdvertiseChannel(_ context.Context, cs *gitfleetv1.ChannelState) error {
	a.channel = append(a.channel, cs)
	return nil
}

func (a *adverts) AdvertiseDesired(_ context.Context, ds *gitfleetv1.DesiredState) error {
	a.desired = append(a.desired, ds)
	return nil
}

func (a *adverts) last() *gitfleetv1.ChannelState { return a.channel[len(a.channel)-1] }

type locator struct{}

func (locator) Locate(_ context.Context, r store.Release) (*gitfleetv1.Release, error) {
	return &gitfleetv1.Release{Version: r.Version, Counter: uint64(r.Counter), BundleDigest: r.BundleDigest,
		ManifestUrl: "http://objects.test/" + r.ObjectKeys["envelope"]}, nil
}

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// TestRolloutAdvancesOnConfirmedBootsAndHalts steps a channel of 40
// devices: wave 0 is advertised; installed-but-unconfirmed devices do not
// advance it; confirmed ones do, after the soak time; failures past the
// policy's rate halt it; an operator's resume and pause are applied.
func TestRolloutAdvancesOnConfirmedBootsAndHalts(t *testing.T) {
	ctx := context.Background()
	st, fl, devices := newFleet(t, filepath.Join(t.TempDir(), "fleet.db"))
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	adv := &adverts{}
	c := &controller.Controller{Fleet: func() (*recipe.Fleet, error) { return fl, nil }, Store: st, Advertise: adv, Locate: locator{},
		Now: func() time.Time { return now }}
	step := func() {
		t.Helper()
		if err := c.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step()
	step()
	if got := adv.last(); got.GetWave().GetIndex() != 0 || got.GetRolloutState() != gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE || got.GetRelease().GetBundleDigest() != digest {
		t.Fatalf("first advert = %v", got)
	}
	wave0 := adv.last().GetWave()
	var inWave0 []int
	for i, d := range devices {
		if wave0.Includes(gitfleetv1.WaveBucket("acme", d.ID)) {
			inWave0 = append(inWave0, i)
		}
	}
	if len(inWave0) == 0 {
		t.Fatal("wave 0 holds no device")
	}
	// Installed but not confirmed: the wave must not advance.
	for _, i := range inWave0 {
		devices[i].Version, devices[i].BundleDigest, devices[i].BootConfirmed, devices[i].UpdateState = "1.4.0", digest, false, "testing"
	}
	st.PutDevices(ctx, devices)
	now = now.Add(time.Minute)
	step()
	if got := adv.last().GetWave().GetIndex(); got != 0 {
		t.Fatalf("wave advanced to %d on unconfirmed boots", got)
	}
	// Confirmed healthy boots: it advances.
	for _, i := range inWave0 {
		devices[i].BootConfirmed, devices[i].UpdateState = true, "idle"
	}
	st.PutDevices(ctx, devices)
	now = now.Add(time.Minute)
	step()
	if got := adv.last().GetWave().GetIndex(); got != 1 {
		t.Fatalf("wave = %d after confirmed boots, want 1", got)
	}
	// Half the devices roll back: above 20 %, the rollout halts itself.
	failed := 0
	for i := range devices {
		if devices[i].BundleDigest != digest && failed < 20 {
			devices[i].UpdateState, devices[i].TargetBundleDigest, devices[i].ErrorCode = "idle", digest, "ERROR_CODE_HEALTH_CHECK_FAILED"
			if _, err := st.RecordFailure(ctx, devices[i].ID, digest); err != nil {
				t.Fatal(err)
			}
			failed++
		}
	}
	st.PutDevices(ctx, devices)
	now = now.Add(time.Minute)
	step()
	sc, _ := st.Channel(ctx, "production")
	if sc.State != store.Halted || adv.last().GetRolloutState() != gitfleetv1.RolloutState_ROLLOUT_STATE_PAUSED {
		t.Fatalf("after %d failures: channel %+v, advert state %v; want halted", failed, sc, adv.last().GetRolloutState())
	}
	t.Logf("halted: %s", sc.Reason)
	// A device that failed the release three times goes into the penalty
	// box: the server cancels the release for it with a desired state.
	var boxed string
	for i := range devices {
		if devices[i].ErrorCode != "" {
			boxed = devices[i].ID
			break
		}
	}
	for range 2 {
		if _, err := st.RecordFailure(ctx, boxed, digest); err != nil {
			t.Fatal(err)
		}
	}
	step()
	found := false
	for _, ds := range adv.desired {
		found = found || (ds.GetDeviceId() == boxed && ds.GetAction() == gitfleetv1.Action_ACTION_CANCEL)
	}
	if !found {
		t.Errorf("device %s failed 3 times but got no cancel (desired states %v)", boxed, adv.desired)
	}
	if err := c.Command(ctx, "production", rollout.Resume, "failures reviewed"); err != nil {
		t.Fatal(err)
	}
	if err := c.Command(ctx, "production", rollout.Pause, "weekend"); err != nil {
		t.Fatal(err)
	}
	if sc, _ := st.Channel(ctx, "production"); sc.State != store.Paused {
		t.Errorf("after pause: %+v", sc)
	}
}

// newFleet opens the store at path with release 1.4.0 built and 40 devices
// of acme-gw-v2 on 1.3.0, and parses fleetYAML.
func newFleet(t *testing.T, path string) (*store.Store, *recipe.Fleet, []store.Device) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fl, err := recipe.ParseFleet("fleet.yaml", []byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ClaimBuild(ctx, "v1.4.0", "r", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := st.FinishBuild(ctx, "r", store.Release{Tag: "v1.4.0", Version: "1.4.0", Counter: 2, Product: "acme", DeviceTypes: []string{"acme-gw-v2"},
		BundleDigest: digest, BuildState: store.Succeeded, Commit: "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
		ObjectKeys: map[string]string{"envelope": "bundles/11.dsse.json"}}); err != nil {
		t.Fatal(err)
	}
	var devices []store.Device
	for i := range 40 {
		d := store.Device{ID: fmt.Sprintf("gw-%03d", i), Fleet: "acme", DeviceType: "acme-gw-v2", Channel: "production",
			Version: "1.3.0", BundleDigest: "sha256:old", BootConfirmed: true, UpdateState: "idle", Online: true, HealthOK: true}
		devices = append(devices, d)
	}
	if _, err := st.PutDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	return st, fl, devices
}

// retryFleetYAML is fleetYAML with every device in the first wave, no halt
// on failures, and the penalty box's policy.
var retryFleetYAML = strings.NewReplacer("waves: [10, 100]", "waves: [100]", "max_failure_rate: 0.2", "max_failure_rate: 1").
	Replace(fleetYAML) + "      penalty_after: 5\n      retry_after: 1m\n"

// TestRetryOrderedOncePerFailure: a device that failed the release is
// ordered to retry it once per failure, and the store, not a replica's
// memory, keeps that it was: a restarted controller (or another replica)
// orders no second retry at the same count, and orders one again after
// the next failure, or after an operator cleared the device's failures.
func TestRetryOrderedOncePerFailure(t *testing.T) {
	ctx := context.Background()
	st, _, devices := newFleet(t, filepath.Join(t.TempDir(), "fleet.db"))
	fl, err := recipe.ParseFleet("fleet.yaml", []byte(retryFleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := &devices[0]
	fail := func() {
		d.UpdateState, d.TargetBundleDigest, d.ErrorCode = "idle", digest, "ERROR_CODE_HEALTH_CHECK_FAILED"
		if _, err := st.PutDevices(ctx, devices); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordFailure(ctx, d.ID, digest); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Minute) // past retry_after
	}
	// The second controller stands for a restart: it remembers nothing.
	var adv [2]adverts
	var cs [2]*controller.Controller
	for i := range cs {
		cs[i] = &controller.Controller{Fleet: func() (*recipe.Fleet, error) { return fl, nil }, Store: st, Advertise: &adv[i],
			Locate: locator{}, Now: func() time.Time { return now }}
	}
	for _, s := range []struct {
		name       string
		before     func()
		controller int
		want       int // retry orders this controller published in all
	}{
		{"before any failure", nil, 0, 0},
		{"after the first failure", fail, 0, 1},
		{"at the next step", nil, 0, 1},
		{"after a restart", nil, 1, 0},
		{"after the second failure", fail, 1, 1},
		{"after an operator cleared the failures and the device failed again", func() {
			if err := st.ClearPenalty(ctx, d.ID, digest); err != nil {
				t.Fatal(err)
			}
			fail()
		}, 1, 2},
	} {
		if s.before != nil {
			s.before()
		}
		if err := cs[s.controller].Step(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ds := range adv[s.controller].desired {
			if ds.GetDeviceId() == d.ID && ds.GetAction() == gitfleetv1.Action_ACTION_RETRY {
				n++
			}
		}
		if n != s.want {
			t.Fatalf("%s: %d retry orders, want %d", s.name, n, s.want)
		}
	}
}
