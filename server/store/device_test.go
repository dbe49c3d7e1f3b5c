package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fullDevice returns a device with every field set.
func fullDevice(id string, at time.Time) Device {
	return Device{
		ID:                 id,
		Fleet:              "acme",
		DeviceType:         "rpi4",
		Channel:            "production",
		AgentVersion:       "0.9.0",
		BootID:             "boot-1",
		BootedSlot:         "a",
		ActiveSlot:         "b",
		Version:            "1.4.0",
		Tag:                "v1.4.0",
		Commit:             "d4e5f6",
		BundleDigest:       "sha256:4d5e",
		BootConfirmed:      true,
		UpdateState:        "downloading",
		TargetVersion:      "1.5.0",
		TargetBundleDigest: "sha256:9f8e",
		DoneBytes:          1 << 20,
		TotalBytes:         1 << 30,
		HealthOK:           true,
		HealthChecks:       []HealthCheck{{Name: "network", OK: true}, {Name: "disk", OK: false, Message: "92% full"}},
		ErrorCode:          "ERROR_CODE_DOWNLOAD",
		ErrorMessage:       "connection reset",
		Online:             true,
		StatusTime:         at.Add(-3 * time.Second),
		LastSeen:           at,
	}
}

func TestPutDevice(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := newClock(s)
		first := clk.Now()

		d := fullDevice("dev-1", first)
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		want := d
		want.FirstSeen = first
		got, err := s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Device after first status (-want +got):\n%s", diff)
		}

		// A later status replaces every status field, healthy checks included,
		// and keeps FirstSeen. A zero LastSeen is now.
		clk.Advance(time.Minute)
		next := Device{
			ID: "dev-1", Fleet: "acme", DeviceType: "rpi4", Channel: "staging", Version: "1.5.0", Tag: "v1.5.0",
			BootedSlot: "b", ActiveSlot: "b", UpdateState: "idle", HealthOK: true, Online: true,
			StatusTime: clk.Now(),
		}
		if err := s.PutDevice(ctx, next); err != nil {
			t.Fatal(err)
		}
		want = next
		want.LastSeen = clk.Now()
		want.FirstSeen = first
		got, err = s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Device after second status (-want +got):\n%s", diff)
		}

		// The last will says only that the device went offline.
		if err := s.SetOnline(ctx, "dev-1", false); err != nil {
			t.Fatal(err)
		}
		want.Online = false
		got, err = s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Device after last will (-want +got):\n%s", diff)
		}

		wantNotFound(t, "SetOnline of an unknown device", s.SetOnline(ctx, "dev-unknown", false))
		_, err = s.Device(ctx, "dev-unknown")
		wantNotFound(t, "Device(dev-unknown)", err)
		if err := s.PutDevice(ctx, Device{}); err == nil {
			t.Error("PutDevice of a device without id succeeded, want an error")
		}
	})
}

func TestPutDevices(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := newClock(s).Now()
		var ds []Device
		for _, id := range []string{"b", "a", "c"} {
			ds = append(ds, fullDevice(id, at))
		}
		if err := s.PutDevices(ctx, ds); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			got, err := s.Device(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			d.FirstSeen = at
			if diff := cmp.Diff(d, got); diff != "" {
				t.Errorf("Device(%s) (-want +got):\n%s", d.ID, diff)
			}
		}

		// A batch with a bad device stores none of it.
		bad := []Device{fullDevice("d", at), {}}
		if err := s.PutDevices(ctx, bad); err == nil {
			t.Fatal("PutDevices with a device without id succeeded, want an error")
		}
		_, err := s.Device(ctx, "d")
		wantNotFound(t, "Device(d) of a failed batch", err)
	})
}
