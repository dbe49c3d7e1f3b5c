package sim_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/sim"
)

// TestPenaltyBox runs one simulated device, whose every attempt at the
// release fails its health check, against a real gitfleet-server with
// penalty_after 2: it fails once, is ordered to retry and fails again, is
// put in the penalty box and not offered the release again; cleared by an
// operator, it is offered it again. The device retries only on the
// server's orders (ACTION_RETRY), which the test reads off the broker.
func TestPenaltyBox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := testenv.Mosquitto(t, "allow_anonymous true")
	broker := "tcp://" + addr
	fleet := testenv.ID(t)
	repo := firmwareRepo(t, "fleet: "+fleet+"\nchannels:\n"+
		"  boxing:\n    release: v1.0.0\n    devices: {device_types: [sim-bad]}\n"+
		"    policy: {waves: [100], wave_duration: 1s, max_failure_rate: 1, min_confirmed: 1, penalty_after: 2, retry_after: 1s}\n")
	api, root := startServer(t, ctx, fleet, broker, repo)
	const device = "boxing-000000"
	desiredTopic, err := topic.Desired(fleet, device)
	if err != nil {
		t.Fatal(err)
	}
	desired := linktest.Collect(t, addr, "", "", "collector-desired", desiredTopic)
	desired.WaitSubscribed(1)

	f, err := sim.New(sim.Config{
		Brokers: []string{broker}, Fleet: fleet, Channel: "boxing", DeviceType: "sim-bad",
		IDPrefix: "boxing-", Devices: 1, Root: root, Fail: 1, SlotSize: 1 << 20,
		Dir: t.TempDir(), BootTime: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	devCtx, stopDevice := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(devCtx) }()
	defer func() {
		stopDevice()
		if err := <-done; err != nil {
			t.Errorf("device: %v", err)
		}
	}()

	// actions returns the desired states' actions the server published to
	// the device, in order.
	actions := func() []string {
		var out []string
		for _, m := range desired.Messages() {
			env, err := gitfleetv1.DecodeSignedMessage(m.Payload)
			if err != nil {
				t.Fatalf("desired state: %v", err)
			}
			ds, err := gitfleetv1.DecodeDesiredState(env)
			if err != nil {
				t.Fatalf("desired state: %v", err)
			}
			out = append(out, strings.TrimPrefix(ds.GetAction().String(), "ACTION_"))
		}
		return out
	}
	// attempts counts the device's updates of the release that ended
	// rolled back, by its events in the server.
	attempts := func() int {
		page, err := api.Events(ctx, device, apiclient.EventQuery{Limit: 500})
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		n := 0
		for _, e := range page.Events {
			if e.To == "rolled_back" {
				n++
			}
		}
		return n
	}
	penalized := func() int {
		ch, err := api.Channel(ctx, "boxing")
		if err != nil || ch.Counts == nil {
			return -1
		}
		return ch.Counts.Penalized
	}
	// waitFor gives up a while before ctx ends, so what it reports is read.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached in 45 s; attempts %d, desired actions %v, penalized %d", what, attempts(), actions(), penalized())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Fail once, retry on the server's order, fail again: in the box.
	waitFor("penalty box", func() bool { return penalized() == 1 && slices.Contains(actions(), "CANCEL") })
	if got, want := actions(), []string{"RETRY", "CANCEL"}; !slices.Equal(got, want) {
		t.Errorf("desired actions before the clear = %v, want %v", got, want)
	}
	if got := attempts(); got != 2 {
		t.Errorf("%d failed attempts when the device went into the penalty box, want 2", got)
	}

	// Cleared: offered again (a retry order lifts the box), and it tries.
	if _, err := api.ClearPenalty(ctx, device, "1.0.0", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor("a third attempt after the clear", func() bool { return attempts() == 3 })
	if got := actions(); len(got) < 3 || !slices.Equal(got[:3], []string{"RETRY", "CANCEL", "RETRY"}) {
		t.Errorf("desired actions after the clear = %v, want RETRY, CANCEL, RETRY first", got)
	}
}
