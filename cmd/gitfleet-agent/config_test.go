package main

import (
	"maps"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/link/linktest"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// TestDaemonPublishesLabels: device.labels of agent.yaml reach the server
// in the daemon's statuses, where fleet.yaml's label selectors read them.
func TestDaemonPublishesLabels(t *testing.T) {
	broker, _, _, cfg, _ := daemonBoard(t)
	cfg.Device.Labels = map[string]string{"ring": "canary", "site": "Building 4"}
	cfg.MQTT.Heartbeat = 100 * time.Millisecond
	status := linktest.Collect(t, broker, "", "", "collector-status", "gitfleet/v1/acme/devices/board-1/status")
	status.WaitSubscribed(1)
	var got []map[string]string
	runUntil(t, cfg, func() bool {
		got = got[:0]
		for _, m := range status.Messages() {
			if st, err := gitfleetv1.DecodeDeviceStatus(m.Payload); err == nil && st.GetOnline() {
				got = append(got, st.GetLabels())
			}
		}
		return len(got) >= 2 // the first status and a heartbeat
	})
	for i, labels := range got {
		if !maps.Equal(labels, cfg.Device.Labels) {
			t.Errorf("status %d has labels %v, want %v", i, labels, cfg.Device.Labels)
		}
	}
}
