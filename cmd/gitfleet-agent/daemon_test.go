package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

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
	broker := testenv.Mosquitto(t, "allow_anonymous true")
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	b := newBoard(t, tr)
	marker := filepath.Join(b.dir, "reboot-requested")
	cfg, err := LoadConfig(b.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.System.RebootCommand = []string{"touch", marker}
	cfg.MQTT.Broker = "tcp://" + broker
	cfg.MQTT.KeepAlive = 2 * time.Second

	// The release in the object layout, served over HTTP.
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
	defer srv.Close()
	digest, _ := m.Digest()

	events := linktest.Collect(t, broker, "", "", "collector-events", "gitfleet/v1/acme/devices/board-1/events")
	events.WaitSubscribed(1)
	cs := &gitfleetv1.ChannelState{
		Fleet: "acme", Channel: "production", Sequence: 1,
		IssuedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Release: &gitfleetv1.Release{Version: "1.4.0", Counter: 14, BundleDigest: "sha256:" + digest.String(), Size: uint64(len(data)),
			ManifestUrl: srv.URL + "/" + o.Envelope, BaseUrl: srv.URL, Tag: "v1.4.0", Commit: bundletest.Release().Provenance.Commit, DeviceTypes: []string{"acme-gw-v2"}},
		Wave:         &gitfleetv1.Wave{Index: 0, Threshold: 10000},
		RolloutState: gitfleetv1.RolloutState_ROLLOUT_STATE_ACTIVE,
	}
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
