package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// filterFleet is a small fleet with a little of everything, labels
// included, some of them made to look like others inside their values.
func filterFleet() []Device {
	ds := []Device{
		{ID: "d01", Fleet: "acme", Channel: "production", Version: "1.4.0", Tag: "v1.4.0", Commit: "c14", UpdateState: "idle", HealthOK: true, BootConfirmed: true, Online: true},
		{ID: "d02", Fleet: "acme", Channel: "production", Version: "1.4.0", Tag: "v1.4.0", Commit: "c14", UpdateState: "idle", HealthOK: true, BootConfirmed: true, Online: false},
		{ID: "d03", Fleet: "acme", Channel: "production", Version: "1.4.0", Tag: "v1.4.0", Commit: "c14", UpdateState: "downloading", HealthOK: true, BootConfirmed: true, Online: true},
		{ID: "d04", Fleet: "acme", Channel: "production", Version: "1.5.0", Tag: "v1.5.0", Commit: "c15", UpdateState: "trial-boot", HealthOK: false, BootConfirmed: false, Online: true},
		{ID: "d05", Fleet: "acme", Channel: "staging", Version: "1.5.0", Tag: "v1.5.0", Commit: "c15", UpdateState: "idle", HealthOK: true, BootConfirmed: true, Online: true},
		{ID: "d06", Fleet: "acme", Channel: "staging", Version: "1.5.0", Tag: "v1.5.0", Commit: "c15", UpdateState: "idle", HealthOK: false, BootConfirmed: true, Online: false},
		{ID: "d07", Fleet: "acme", Channel: "staging", Version: "1.5.0-rc.1", Tag: "v1.5.0-rc.1", Commit: "c15rc", UpdateState: "idle", HealthOK: true, BootConfirmed: false, Online: true},
		{ID: "d08", Fleet: "other", Channel: "production", Version: "1.4.0", Tag: "v1.4.0", Commit: "c14", UpdateState: "idle", HealthOK: true, BootConfirmed: true, Online: true},
	}
	for i, l := range []map[string]string{
		{"region": "eu", "hw": "rev2"},
		{"region": "us"},
		{"region": "eu-west"},
		{"region": "EU"},
		{"region": "eu", "site": "a_b%c"},
		{"note": `"region":"eu"`, "x": `\\"`},
		{"myregion": "eu"},
	} {
		ds[i].Labels = l
	}
	return ds
}

func TestDevicesFilter(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.PutDevices(ctx, filterFleet()); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			filter DeviceFilter
			want   []string
		}{
			{"all", DeviceFilter{}, []string{"d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08"}},
			{"fleet", DeviceFilter{Fleet: "other"}, []string{"d08"}},
			{"channel", DeviceFilter{Channel: "staging"}, []string{"d05", "d06", "d07"}},
			{"version", DeviceFilter{Version: "1.5.0"}, []string{"d04", "d05", "d06"}},
			{"tag", DeviceFilter{Tag: "v1.5.0-rc.1"}, []string{"d07"}},
			{"commit", DeviceFilter{Commit: "c14"}, []string{"d01", "d02", "d03", "d08"}},
			{"state", DeviceFilter{State: "idle"}, []string{"d01", "d02", "d05", "d06", "d07", "d08"}},
			{"unhealthy", DeviceFilter{Healthy: ptr(false)}, []string{"d04", "d06"}},
			{"healthy", DeviceFilter{Healthy: ptr(true)}, []string{"d01", "d02", "d03", "d05", "d07", "d08"}},
			{"unconfirmed", DeviceFilter{Confirmed: ptr(false)}, []string{"d04", "d07"}},
			{"confirmed", DeviceFilter{Confirmed: ptr(true)}, []string{"d01", "d02", "d03", "d05", "d06", "d08"}},
			{"offline", DeviceFilter{Online: ptr(false)}, []string{"d02", "d06"}},
			{"online", DeviceFilter{Online: ptr(true)}, []string{"d01", "d03", "d04", "d05", "d07", "d08"}},
			{"combined", DeviceFilter{Fleet: "acme", Channel: "production", Version: "1.4.0", State: "idle", Online: ptr(true)}, []string{"d01"}},
			{"healthy confirmed staging", DeviceFilter{Channel: "staging", Healthy: ptr(true), Confirmed: ptr(true)}, []string{"d05"}},
			{"no match", DeviceFilter{Channel: "production", Version: "1.5.0-rc.1"}, nil},
			{"unknown value", DeviceFilter{Channel: "nightly"}, nil},
			{"label", DeviceFilter{Labels: map[string]string{"region": "eu"}}, []string{"d01", "d05"}},
			{"two labels", DeviceFilter{Labels: map[string]string{"region": "eu", "hw": "rev2"}}, []string{"d01"}},
			{"label and channel", DeviceFilter{Channel: "staging", Labels: map[string]string{"region": "eu"}}, []string{"d05"}},
			{"label value is exact, not a prefix", DeviceFilter{Labels: map[string]string{"region": "eu-w"}}, nil},
			{"label value case matters", DeviceFilter{Labels: map[string]string{"region": "EU"}}, []string{"d04"}},
			{"label wildcards are plain characters", DeviceFilter{Labels: map[string]string{"site": "a_b%c"}}, []string{"d05"}},
			{"label wildcards match nothing else", DeviceFilter{Labels: map[string]string{"site": "a%"}}, nil},
			{"label value with quotes", DeviceFilter{Labels: map[string]string{"note": `"region":"eu"`}}, []string{"d06"}},
			{"label value with a backslash", DeviceFilter{Labels: map[string]string{"x": `\\"`}}, []string{"d06"}},
			{"unknown label", DeviceFilter{Labels: map[string]string{"rack": "7"}}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				p, err := s.Devices(ctx, DeviceQuery{DeviceFilter: c.filter})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.want, ids(p.Devices)); diff != "" {
					t.Errorf("Devices (-want +got):\n%s", diff)
				}
				if p.Next != "" {
					t.Errorf("Next = %q on the only page, want empty", p.Next)
				}
				n, err := s.CountDevices(ctx, c.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := n, len(c.want); got != want {
					t.Errorf("CountDevices = %d, want %d", got, want)
				}
			})
		}
	})
}

func TestDevicesPagination(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var ds []Device
		var all, production []string
		for i := range 25 {
			d := Device{ID: fmt.Sprintf("dev-%03d", i), Channel: "staging", Online: true}
			if i%3 != 0 {
				d.Channel = "production"
				production = append(production, d.ID)
			}
			ds = append(ds, d)
			all = append(all, d.ID)
		}
		// Put out of order: the list's order is by id, not by arrival.
		slices.Reverse(ds)
		if _, err := s.PutDevices(ctx, ds); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name      string
			filter    DeviceFilter
			limit     int
			want      []string
			wantPages int
		}{
			{"all by 10", DeviceFilter{}, 10, all, 3},
			{"all by 25", DeviceFilter{}, 25, all, 1},
			{"all by 1", DeviceFilter{}, 1, all, 25},
			{"default limit", DeviceFilter{}, 0, all, 1},
			{"filtered by 4", DeviceFilter{Channel: "production", Online: ptr(true)}, 4, production, 4},
		} {
			t.Run(c.name, func(t *testing.T) {
				var got []string
				q := DeviceQuery{DeviceFilter: c.filter, Limit: c.limit}
				pages := 0
				for {
					p, err := s.Devices(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if c.limit > 0 && len(p.Devices) > c.limit {
						t.Fatalf("page %d holds %d devices, more than the limit %d", pages, len(p.Devices), c.limit)
					}
					got = append(got, ids(p.Devices)...)
					if p.Next == "" {
						break
					}
					if pages > len(c.want) {
						t.Fatalf("more than %d pages", pages)
					}
					q.After = p.Next
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("devices over all pages (-want +got):\n%s", diff)
				}
				if pages != c.wantPages {
					t.Errorf("%d pages, want %d", pages, c.wantPages)
				}
			})
		}
	})
}

func ids(ds []Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}
