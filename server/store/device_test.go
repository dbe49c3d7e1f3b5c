package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
		Labels:             map[string]string{"ring": "canary", "site": "Building 4 \"north\" ü"},
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

		// Labels are no filter column: a status that changes only them is
		// written in place, and writes them too.
		clk.Advance(time.Second)
		next.StatusTime, next.Labels = clk.Now(), map[string]string{"ring": "main"}
		if err := s.PutDevice(ctx, next); err != nil {
			t.Fatal(err)
		}
		want.StatusTime, want.LastSeen, want.Labels = clk.Now(), clk.Now(), next.Labels
		got, err = s.Device(ctx, "dev-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Device after new labels (-want +got):\n%s", diff)
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
		if _, err := s.PutDevices(ctx, ds); err != nil {
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
		if _, err := s.PutDevices(ctx, bad); err == nil {
			t.Fatal("PutDevices with a device without id succeeded, want an error")
		}
		_, err := s.Device(ctx, "d")
		wantNotFound(t, "Device(d) of a failed batch", err)
	})
}

// TestPutDevicesKeepsTheLatest checks that a device's stored status is the
// latest by the device's clock, whatever order its statuses arrive in, and
// whichever statement writes them: a status that changes no filter column
// (a heartbeat) or one that does.
func TestPutDevicesKeepsTheLatest(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// status returns dev-1's status taken at device time at+sec seconds and
	// received at at+recv seconds.
	status := func(sec, recv int, state string) Device {
		d := fullDevice("dev-1", at)
		d.StatusTime = at.Add(time.Duration(sec) * time.Second)
		d.LastSeen = at.Add(time.Duration(recv) * time.Second)
		d.UpdateState = state
		d.DoneBytes = int64(sec)
		return d
	}
	type put struct {
		status    Device
		wantStale bool
	}
	for _, c := range []struct {
		name string
		puts []put
		want Device // FirstSeen aside
	}{{
		name: "in order",
		puts: []put{{status(1, 1, "idle"), false}, {status(2, 2, "idle"), false}, {status(3, 3, "downloading"), false}},
		want: status(3, 3, "downloading"),
	}, {
		name: "late heartbeat",
		puts: []put{{status(1, 1, "idle"), false}, {status(3, 3, "idle"), false}, {status(2, 4, "idle"), true}},
		want: status(3, 3, "idle"),
	}, {
		name: "late change",
		puts: []put{{status(1, 1, "idle"), false}, {status(3, 3, "installing"), false}, {status(2, 4, "downloading"), true}},
		want: status(3, 3, "installing"),
	}, {
		name: "redelivered",
		puts: []put{{status(1, 1, "idle"), false}, {status(1, 2, "idle"), false}},
		want: status(1, 2, "idle"),
	}, {
		// Arrival decides once the stored status is over a minute old: the
		// device's clock went back.
		name: "clock went back",
		puts: []put{{status(100, 1, "idle"), false}, {status(5, 30, "idle"), true}, {status(6, 62, "rebooting"), false}},
		want: status(6, 62, "rebooting"),
	}, {
		name: "no device time",
		puts: []put{{status(100, 1, "idle"), false}, {status(-1, 2, "downloading"), false}},
		want: status(-1, 2, "downloading"),
	}} {
		t.Run(c.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s *Store) {
				ctx := context.Background()
				for i, p := range c.puts {
					if p.status.DoneBytes < 0 {
						p.status.StatusTime, p.status.DoneBytes = time.Time{}, 0
					}
					stale, err := s.PutDevices(ctx, []Device{p.status})
					if err != nil {
						t.Fatal(err)
					}
					if got := len(stale) > 0; got != p.wantStale {
						t.Errorf("put %d: stale = %v, want stale %t", i, stale, p.wantStale)
					}
				}
				want := c.want
				if want.DoneBytes < 0 {
					want.StatusTime, want.DoneBytes = time.Time{}, 0
				}
				want.FirstSeen = c.puts[0].status.LastSeen
				got, err := s.Device(ctx, "dev-1")
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Device (-want +got):\n%s", diff)
				}
				// The filter indexes agree with the row.
				n, err := s.CountDevices(ctx, DeviceFilter{State: want.UpdateState, Fleet: want.Fleet, Online: ptr(true)})
				if err != nil || n != 1 {
					t.Errorf("CountDevices(state %s) = %d, %v; want 1", want.UpdateState, n, err)
				}
			})
		})
	}
}

// TestPutDevicesBatch checks a batch that mixes new devices, heartbeats,
// changes, a late status and two statuses of one device: each device ends
// with its latest status, and only the late one is stale.
func TestPutDevicesBatch(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := newClock(s).Now()
		var first []Device
		for i := range 200 {
			first = append(first, fullDevice(fmt.Sprintf("dev-%03d", i), at))
		}
		if stale, err := s.PutDevices(ctx, first); err != nil || len(stale) > 0 {
			t.Fatalf("PutDevices = %v, %v; want no stale status and no error", stale, err)
		}
		later := at.Add(time.Minute)
		want := map[string]Device{}
		var batch []Device
		for i, d := range first {
			switch {
			case i%4 == 0: // a heartbeat
				d.StatusTime, d.LastSeen, d.DoneBytes = later, later, 42
			case i%4 == 1: // a change of filter column
				d.StatusTime, d.LastSeen, d.Version, d.Online = later, later, "1.6.0", false
			case i%4 == 2: // late: older than the stored one
				d.StatusTime, d.LastSeen, d.UpdateState = d.StatusTime.Add(-time.Second), later, "idle"
				batch = append(batch, d)
				continue
			}
			batch = append(batch, d)
			d.FirstSeen = at
			want[d.ID] = d
		}
		for i := range 100 { // new devices
			d := fullDevice(fmt.Sprintf("new-%03d", i), later)
			batch = append(batch, d)
			d.FirstSeen = later
			want[d.ID] = d
		}
		// Two statuses of a new device.
		d := fullDevice("twice", later)
		d.StatusTime, d.UpdateState = later.Add(time.Second), "rebooting"
		batch = append(batch, d)
		d2 := d
		d2.StatusTime, d2.UpdateState = later, "installing"
		batch = append(batch, d2)
		d.FirstSeen = later
		want[d.ID] = d
		rand.New(rand.NewPCG(5, 6)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		// The older status is stale if it comes second.
		wantStale := 50
		index := func(state string) int {
			return slices.IndexFunc(batch, func(x Device) bool { return x.ID == "twice" && x.UpdateState == state })
		}
		if index("installing") > index("rebooting") {
			wantStale++
		}
		stale, err := s.PutDevices(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) != wantStale {
			t.Errorf("%d stale statuses, want %d", len(stale), wantStale)
		}
		for id, w := range want {
			got, err := s.Device(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("Device(%s) (-want +got):\n%s", id, diff)
			}
		}
		// The filter indexes agree with the rows.
		for _, c := range []struct {
			f    DeviceFilter
			want int
		}{
			{DeviceFilter{Version: "1.6.0"}, 50},
			{DeviceFilter{Version: "1.6.0", Online: ptr(true)}, 0},
			{DeviceFilter{Online: ptr(false)}, 50},
			{DeviceFilter{State: "rebooting"}, 1},
			{DeviceFilter{State: "idle"}, 0},
			{DeviceFilter{Fleet: "acme"}, 301},
		} {
			if n, err := s.CountDevices(ctx, c.f); err != nil || n != c.want {
				t.Errorf("CountDevices(%+v) = %d, %v; want %d", c.f, n, err, c.want)
			}
			page, err := s.Devices(ctx, DeviceQuery{DeviceFilter: c.f, Limit: MaxPage})
			if err != nil || len(page.Devices) != c.want {
				t.Errorf("Devices(%+v) = %d devices, %v; want %d", c.f, len(page.Devices), err, c.want)
			}
		}
	})
}
