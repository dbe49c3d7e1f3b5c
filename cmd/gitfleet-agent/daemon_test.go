package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/follow"
	"github.com/gitfleet/gitfleet/agent/link/linktest"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// TestDaemonFollowsChannel runs the daemon against a real Mosquitto: a
// signed channel advert makes it download the bundle from object storage
// (an HTTP file server here), install it and reboot; after the board's
// power-on a restarted daemon checks health and commits; the events arrive
// in order, each once, and the retained status shows the new release
// confirmed.
func TestDaemonFollowsChannel(t *testing.T) {
	broker, tr, b, cfg, marker := daemonBoard(t)

	rel := serveRelease(t, tr)
	events := linktest.Collect(t, broker, "", "", "collector-events", "gitfleet/v1/acme/devices/board-1/events")
	events.WaitSubscribed(1)
	cs := activeChannel(rel)
	name, _ := topic.Channel("acme", "production")
	server := linktest.Connect(t, broker, "", "", "server")
	server.Publish(name, linktest.Sign(t, cs, tr.Time), true)

	// First boot: install, then ask to reboot.
	runUntil(t, cfg, func() bool { _, err := os.Stat(marker); return err == nil })
	j, _ := update.ReadJournal(filepath.Join(cfg.DataDir, "journal.json"))
	if j.State != update.Rebooting {
		t.Fatalf("state after install = %s, want rebooting", j.State)
	}

	// Power-on into B; the restarted daemon confirms the release, and runs
	// until its outbox has sent the last event and its status says so.
	status := linktest.Collect(t, broker, "", "", "collector-status", "gitfleet/v1/acme/devices/board-1/status")
	status.WaitSubscribed(1)
	// The advert is withdrawn (an empty retained message): the restarted
	// daemon acts on its journal alone, so nothing but the resume itself
	// sets its status.
	server.Publish(name, nil, true)
	b.powerOn(t)
	lastSent := func(ms []linktest.Message) bool {
		for _, m := range ms {
			if ev, err := gitfleetv1.DecodeDeviceEvent(m.Payload); err == nil && ev.GetFromState() == "succeeded" {
				return true
			}
		}
		return false
	}
	// online is what the daemon published while it ran: the link sends its
	// current status on every change and every heartbeat.
	online := func() []*gitfleetv1.DeviceStatus {
		var sts []*gitfleetv1.DeviceStatus
		for _, m := range status.Messages() {
			if st, err := gitfleetv1.DecodeDeviceStatus(m.Payload); err == nil && st.GetOnline() {
				sts = append(sts, st)
			}
		}
		return sts
	}
	confirmed := func(st *gitfleetv1.DeviceStatus) bool {
		return st.GetVersion() == "1.4.0" && st.GetBootConfirmed() && st.GetUpdateState() == "idle" && st.GetTag() == "v1.4.0" &&
			st.GetBootedSlot() == "B" && st.GetActiveSlot() == "B" && st.GetBootId() != ""
	}
	// Stop once a heartbeat has repeated the confirmed status: then it is
	// the daemon's settled word, not a moment before a stale one.
	cfg.MQTT.Heartbeat = 100 * time.Millisecond
	runUntil(t, cfg, func() bool {
		j, err := update.ReadJournal(filepath.Join(cfg.DataDir, "journal.json"))
		sts := online()
		return err == nil && j.State == update.Idle && j.Installed.Version == "1.4.0" && lastSent(events.Messages()) &&
			len(sts) >= 2 && confirmed(sts[len(sts)-1]) && confirmed(sts[len(sts)-2])
	})
	msgs := events.Messages()
	var seq uint64
	var states []string
	for _, m := range msgs {
		ev, err := gitfleetv1.DecodeDeviceEvent(m.Payload)
		if err != nil {
			t.Fatalf("event: %v", err)
		}
		switch {
		case ev.GetSequence() == seq:
			continue // a resend after a reconnect: same sequence, dropped by the server
		case ev.GetSequence() != seq+1:
			t.Fatalf("event sequence %d after %d: a gap", ev.GetSequence(), seq)
		}
		seq = ev.GetSequence()
		states = append(states, ev.GetToState())
	}
	want := []string{"checking", "writing", "verifying", "arming", "rebooting", "testing", "committing", "succeeded", "idle"}
	if !equal(states, want) {
		t.Errorf("event states = %v, want %v", states, want)
	}
}

// TestDaemonKeepsStandingCancel: a cancel the daemon accepted stands across
// its restart even when the broker no longer holds it, so the restarted
// daemon does not install the channel's release; the server's lift lets it.
func TestDaemonKeepsStandingCancel(t *testing.T) {
	broker, tr, _, cfg, marker := daemonBoard(t)
	cfg.MQTT.Heartbeat = 100 * time.Millisecond
	rel := serveRelease(t, tr)
	desiredTopic, _ := topic.Desired("acme", "board-1")
	channelTopic, _ := topic.Channel("acme", "production")
	desired := func(seq uint64, a gitfleetv1.Action) []byte {
		return linktest.Sign(t, &gitfleetv1.DesiredState{Fleet: "acme", DeviceId: "board-1", Sequence: seq, Action: a,
			IssuedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}, tr.Time)
	}
	accepted := func(name string, seq uint64) bool {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "link", "accepted.json"))
		var seen map[string]struct{ Sequence uint64 }
		return err == nil && json.Unmarshal(b, &seen) == nil && seen[name].Sequence >= seq
	}
	server := linktest.Connect(t, broker, "", "", "server")
	server.Publish(desiredTopic, desired(1, gitfleetv1.Action_ACTION_CANCEL), true)
	// Until the daemon keeps the cancel: the link records the sequence
	// just before it hands the state over.
	runUntil(t, cfg, func() bool {
		f, err := follow.Open(filepath.Join(cfg.DataDir, "follow.json"), follow.Device{})
		return err == nil && f.Desired().GetAction() == gitfleetv1.Action_ACTION_CANCEL
	})

	// The broker no longer holds the cancel; the channel offers 1.4.0.
	server.Publish(desiredTopic, nil, true)
	server.Publish(channelTopic, linktest.Sign(t, activeChannel(rel), tr.Time), true)
	status := linktest.Collect(t, broker, "", "", "collector-status", "gitfleet/v1/acme/devices/board-1/status")
	status.WaitSubscribed(1)
	// Run until two heartbeats after the daemon accepted the channel state:
	// by then it has decided on it.
	after := -1
	runUntil(t, cfg, func() bool {
		n := len(status.Messages())
		if after < 0 && accepted(channelTopic, 1) {
			after = n
		}
		return after >= 0 && n >= after+2
	})
	j, err := update.ReadJournal(filepath.Join(cfg.DataDir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if j.State != update.Idle || j.Update != nil || j.LastResult != nil {
		t.Fatalf("with a cancel standing from before the restart the daemon started an update: journal state %s, update %+v, last result %+v", j.State, j.Update, j.LastResult)
	}

	// The lift: the daemon follows its channel again.
	server.Publish(desiredTopic, desired(2, gitfleetv1.Action_ACTION_NONE), true)
	runUntil(t, cfg, func() bool { _, err := os.Stat(marker); return err == nil })
}

// daemonBoard starts Mosquitto and makes a board whose daemon talks to
// it; the board's reboot command touches marker.
func daemonBoard(t *testing.T) (broker string, tr *bundletest.Trust, b *board, cfg Config, marker string) {
	t.Helper()
	broker = testenv.Mosquitto(t, "allow_anonymous true")
	tr = bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	b = newBoard(t, tr)
	marker = filepath.Join(b.dir, "reboot-requested")
	cfg, err := LoadConfig(b.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.System.RebootCommand = []string{"touch", marker}
	cfg.MQTT.Broker = "tcp://" + broker
	cfg.MQTT.KeepAlive = 2 * time.Second
	return broker, tr, b, cfg, marker
}

// runUntil runs the daemon until cond holds, then stops it as SIGTERM would.
func runUntil(t *testing.T, cfg Config, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, cfg, &log) }()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the daemon did not get there in 30 s; its log:\n%s", log.String())
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("the daemon stopped: %v; its log:\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("daemon: %v\n%s", err, log.String())
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serveRelease makes a signed release of one rootfs image, puts it in the
// object layout served over HTTP, and returns how a channel advertises it.
func serveRelease(t *testing.T, tr *bundletest.Trust) *gitfleetv1.Release {
	t.Helper()
	img := bundletest.Image(t, 300_000, 1)
	data, m := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: img}}, tr.Targets...)
	objects := t.TempDir()
	r, err := bundle.NewReader(context.Background(), bytes.NewReader(data), tr.Verifier(t), bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := bundle.Explode(context.Background(), r, bundle.Dir(objects))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(objects)))
	t.Cleanup(srv.Close)
	digest, _ := m.Digest()
	return &gitfleetv1.Release{Version: "1.4.0", Counter: 14, BundleDigest: "sha256:" + digest.String(), Size: uint64(len(data)),
		ManifestUrl: srv.URL + "/" + o.Envelope, BaseUrl: srv.URL, Tag: "v1.4.0", Commit: bundletest.Release().Provenance.Commit, DeviceTypes: []string{"acme-gw-v2"}}
}

// activeChannel is sequence 1 of channel production with rel rolled out to
// every device.
func activeChannel(rel *gitfleetv1.Release) *gitfleetv1.ChannelState {
	return &gitfleetv1.ChannelState{
		Fleet: "acme", Channel: "production", Sequence: 1,
		IssuedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Release: rel, Wave: &gitfleetv1.Wave{Index: 0, Threshold: 10000},
		RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE,
	}
}
