package api_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/store"
)

// filterTests are device list queries and the devices each matches.
var filterTests = []struct {
	name  string
	query string
	match func(d store.Device) bool
}{
	{"all", "", func(store.Device) bool { return true }},
	{"fleet", "fleet=globex", func(d store.Device) bool { return d.Fleet == "globex" }},
	{"channel", "channel=staging", func(d store.Device) bool { return d.Channel == "staging" }},
	{"version", "version=1.3.0", func(d store.Device) bool { return d.Version == "1.3.0" }},
	{"tag", "tag=v1.5.0-rc.1", func(d store.Device) bool { return d.Tag == "v1.5.0-rc.1" }},
	{"commit", "commit=" + apitest.Fleet(1)[0].Commit, func(d store.Device) bool { return d.Commit == apitest.Fleet(1)[0].Commit }},
	{"state", "state=downloading", func(d store.Device) bool { return d.UpdateState == "downloading" }},
	{"health ok", "health=ok", func(d store.Device) bool { return d.HealthOK }},
	{"health failing", "health=failing", func(d store.Device) bool { return !d.HealthOK }},
	{"confirmed", "confirmed=true", func(d store.Device) bool { return d.BootConfirmed }},
	{"unconfirmed", "confirmed=false", func(d store.Device) bool { return !d.BootConfirmed }},
	{"online", "online=true", func(d store.Device) bool { return d.Online }},
	{"offline", "online=false", func(d store.Device) bool { return !d.Online }},
	{"channel, version and online", "channel=production&version=1.4.0&online=true", func(d store.Device) bool {
		return d.Channel == "production" && d.Version == "1.4.0" && d.Online
	}},
	{"offline and failing in staging", "channel=staging&online=false&health=failing", func(d store.Device) bool {
		return d.Channel == "staging" && !d.Online && !d.HealthOK
	}},
	{"label", "label=ring=canary", func(d store.Device) bool { return d.Labels["ring"] == "canary" }},
	{"two labels in staging", "label=ring=canary&label=site=plant-1&channel=staging", func(d store.Device) bool {
		return d.Labels["ring"] == "canary" && d.Labels["site"] == "plant-1" && d.Channel == "staging"
	}},
	{"nothing", "channel=nowhere", func(store.Device) bool { return false }},
}

// TestDeviceFilters walks every filter's pages with the cursor, a few
// devices at a time, and compares what it got with the seeded devices the
// filter matches.
func TestDeviceFilters(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	checkFilters(t, s, 7)
}

// TestDeviceFiltersPostgres does the same on PostgreSQL.
func TestDeviceFiltersPostgres(t *testing.T) {
	s := apitest.New(t, apitest.Options{DSN: testenv.Postgres(t), Devices: 200})
	checkFilters(t, s, 23)
}

func checkFilters(t *testing.T, s *apitest.Server, limit int) {
	for _, tc := range filterTests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, d := range s.Devices {
				if tc.match(d) {
					want = append(want, d.ID)
				}
			}
			got, pages := walkDevices(t, s, tc.query, limit)
			if !cmp.Equal(got, want) {
				t.Errorf("?%s: got %d devices, want %d:\n%s", tc.query, len(got), len(want), cmp.Diff(want, got))
			}
			// The last page has no next, even when it is full; an empty
			// list is one empty page.
			if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
				t.Errorf("?%s: %d pages of %d, want %d", tc.query, pages, limit, wantPages)
			}
		})
	}
}

// walkDevices pages through the device list with query and limit, and
// returns the ids it got and how many pages it took.
func walkDevices(t *testing.T, s *apitest.Server, query string, limit int) (ids []string, pages int) {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	v.Set("limit", strconv.Itoa(limit))
	for {
		a := request(t, s, "GET", "/api/v1/devices?"+v.Encode(), apitest.ReadToken, "")
		if a.status != 200 {
			t.Fatalf("?%s: status %d %s", v.Encode(), a.status, a.body)
		}
		p := decode[apiclient.DevicePage](t, a)
		pages++
		if len(p.Devices) > limit {
			t.Fatalf("page of %d devices, over the limit %d", len(p.Devices), limit)
		}
		for _, d := range p.Devices {
			ids = append(ids, d.ID)
		}
		if p.Next == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatal("more than 1000 pages: the cursor does not advance")
		}
		v.Set("after", p.Next)
	}
}

// TestDeviceLabels: the device list and a device show the labels a device
// reports, and an empty object for a device that reports none.
func TestDeviceLabels(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 5})
	want := map[string]map[string]string{}
	for _, d := range s.Devices {
		want[d.ID] = d.Labels
		if want[d.ID] == nil {
			want[d.ID] = map[string]string{}
		}
	}
	if len(want["dev-00000"]) == 0 || len(want["dev-00001"]) != 0 {
		t.Fatalf("seeded labels %v: want dev-00000 labelled, dev-00001 not", want)
	}
	got := map[string]map[string]string{}
	a := request(t, s, "GET", "/api/v1/devices", apitest.ReadToken, "")
	for _, d := range decode[apiclient.DevicePage](t, a).Devices {
		got[d.ID] = d.Labels
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels in the device list (-want +got):\n%s", diff)
	}
	for _, id := range []string{"dev-00000", "dev-00001"} {
		a := request(t, s, "GET", "/api/v1/devices/"+id, apitest.ReadToken, "")
		if diff := cmp.Diff(want[id], decode[apiclient.Device](t, a).Labels); diff != "" {
			t.Errorf("labels of %s (-want +got):\n%s", id, diff)
		}
		if id == "dev-00001" && !strings.Contains(string(a.body), `"labels":{}`) {
			t.Errorf("device without labels: %s, want \"labels\":{}", a.body)
		}
	}
}

// TestDeviceQueryRefused: parameters the list cannot use are refused with a
// message naming them, rather than ignored.
func TestDeviceQueryRefused(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 5})
	tests := []struct {
		query string
		want  string
	}{
		{"chanel=staging", `unknown query parameter "chanel"`},
		{"channel=a&channel=b", "channel given 2 times"},
		{"online=yes", `online="yes": use true or false`},
		{"confirmed=1", `confirmed="1": use true or false`},
		{"health=true", `health="true": use ok or failing`},
		{"limit=0", "limit=\"0\": use a whole number from 1 to 1000"},
		{"limit=1001", "limit=\"1001\""},
		{"limit=ten", "limit=\"ten\""},
		{"after=not%20base64!", "after=\"not base64!\" is not a cursor"},
		{"label=ring", `label="ring": give NAME=VALUE`},
		{"label=ring=canary&label=ring=stable", "label names ring twice"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			a := request(t, s, "GET", "/api/v1/devices?"+tc.query, apitest.ReadToken, "")
			if a.status != 400 {
				t.Fatalf("status %d %s, want 400", a.status, a.body)
			}
			if got := a.errorBody(t).Error; !strings.Contains(got, tc.want) {
				t.Errorf("error %q does not say %q", got, tc.want)
			}
		})
	}
}

// TestEventPages walks a device's 30 events, 7 a page, newest first.
func TestEventPages(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	var seqs []uint64
	var withError []uint64
	path := "/api/v1/devices/dev-00000/events?limit=7"
	for pages := 1; ; pages++ {
		a := request(t, s, "GET", path, apitest.ReadToken, "")
		p := decode[apiclient.EventPage](t, a)
		for _, e := range p.Events {
			seqs = append(seqs, e.Sequence)
			if e.Error != nil {
				withError = append(withError, e.Sequence)
			}
		}
		if p.Next == "" {
			if pages != 5 {
				t.Errorf("%d pages, want 5", pages)
			}
			break
		}
		path = "/api/v1/devices/dev-00000/events?limit=7&before=" + url.QueryEscape(p.Next)
	}
	var want []uint64
	for i := uint64(30); i > 0; i-- {
		want = append(want, i)
	}
	if !cmp.Equal(seqs, want) {
		t.Errorf("sequences %v, want %v", seqs, want)
	}
	if want := []uint64{18}; !cmp.Equal(withError, want) {
		t.Errorf("events with an error: %v, want %v", withError, want)
	}
}

// TestClearPenalty lets a device out of the penalty box: its failures to
// install the release are forgotten; only an admin token may, and a bad or
// unknown release is refused without touching the store.
func TestClearPenalty(t *testing.T) {
	ctx := context.Background()
	s := apitest.New(t, apitest.Options{Devices: 3})
	rel, err := s.Store.Release(ctx, "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Store.RecordFailure(ctx, "dev-00001", rel.BundleDigest); err != nil {
			t.Fatal(err)
		}
	}
	failures := func() int {
		n, err := s.Store.Failures(ctx, "dev-00001", rel.BundleDigest)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const path = "/api/v1/devices/dev-00001/clear-penalty"
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
	}{
		{"read token", path, apitest.ReadToken, `{"release":"1.4.0"}`, 403},
		{"no release", path, apitest.AdminToken, `{}`, 400},
		{"two-line reason", path, apitest.AdminToken, `{"release":"1.4.0","reason":"a\nb"}`, 400},
		{"unknown release", path, apitest.AdminToken, `{"release":"9.9.9"}`, 404},
		{"unknown device", "/api/v1/devices/dev-99999/clear-penalty", apitest.AdminToken, `{"release":"1.4.0"}`, 404},
	} {
		if a := request(t, s, "POST", tc.path, tc.token, tc.body); a.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, a.status, tc.status, a.body)
		} else {
			a.errorBody(t)
		}
		if n := failures(); n != 2 {
			t.Fatalf("%s: failures = %d, want 2 untouched", tc.name, n)
		}
	}
	a := request(t, s, "POST", path, apitest.AdminToken, `{"release":"v1.4.0","reason":"replaced the flash"}`)
	if a.status != 200 || decode[apiclient.Device](t, a).ID != "dev-00001" {
		t.Fatalf("clear: %d %s", a.status, a.body)
	}
	if n := failures(); n != 0 {
		t.Errorf("failures after the clear = %d, want 0", n)
	}
}
