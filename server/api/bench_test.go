package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/store"
)

// BenchmarkListDevices100k measures GET /api/v1/devices over HTTP on a
// SQLite store of 100,000 devices: an op is one page, the client walking a
// filter's pages with the cursor and starting over at the end. It reports
// the median and 99th percentile of a page's latency as the client sees it
// (p50-ms, p99-ms; the goal is p99 at most 50 ms) and, as the floor measured
// in the same run, the median of the store's own query for the same pages:
// p50/store is what HTTP, auth, logging and JSON cost on top. The last
// sub-benchmark has four clients ask at once.
func BenchmarkListDevices100k(b *testing.B) {
	const n = 100_000
	start := time.Now()
	s := apitest.New(b, apitest.Options{Devices: n})
	if err := s.Store.Optimize(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d devices in %v", n, time.Since(start).Round(time.Millisecond))
	queries := []struct {
		name  string
		query string
	}{
		{"unfiltered", ""},
		{"channel+online", "channel=production&online=true"},
		{"channel+version+state", "channel=production&version=1.4.0&state=downloading"},
		{"failing", "health=failing"},
		{"offline+unconfirmed", "online=false&confirmed=false"},
		// A sixth of the devices, found in the labels' JSON without an index.
		{"label", "label=site=plant-1"},
		{"unfiltered-limit1000", "limit=1000"},
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			v, _ := url.ParseQuery(q.query)
			filter, err := apiclient.ParseDeviceQuery(v)
			if err != nil {
				b.Fatal(err)
			}
			floor := storeLatency(b, s.Store, filter, 200)
			var lat []time.Duration
			after := ""
			for b.Loop() {
				if after != "" {
					v.Set("after", after)
				} else {
					v.Del("after")
				}
				var d time.Duration
				d, after = timeList(b, hc, s.URL+"/api/v1/devices?"+v.Encode())
				lat = append(lat, d)
			}
			b.StopTimer()
			slices.Sort(lat)
			p50 := percentile(lat, 0.50)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
			b.ReportMetric(float64(p50)/float64(floor), "p50/store")
		})
	}
	// Clients at once, each walking the channel+online pages: what p99
	// becomes when requests queue for the two cores and the store's four
	// readers.
	b.Run("channel+online-4clients", func(b *testing.B) {
		const clients = 4
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			v := url.Values{"channel": {"production"}, "online": {"true"}}
			var mine []time.Duration
			after := ""
			for pb.Next() {
				v.Set("after", after)
				if after == "" {
					v.Del("after")
				}
				var d time.Duration
				d, after = timeList(b, hc, s.URL+"/api/v1/devices?"+v.Encode())
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	})
}

// timeList gets one page and returns how long it took, to the last byte
// decoded, and the page's next cursor.
func timeList(b *testing.B, hc *http.Client, u string) (time.Duration, string) {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+apitest.ReadToken)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var p apiclient.DevicePage
	err = json.NewDecoder(resp.Body).Decode(&p)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
	return d, p.Next
}

// storeLatency returns the median latency of pages of q straight from the
// store, walking its pages as the HTTP benchmark does.
func storeLatency(b *testing.B, st *store.Store, q apiclient.DeviceQuery, pages int) time.Duration {
	sq := store.DeviceQuery{
		DeviceFilter: store.DeviceFilter{Fleet: q.Fleet, Channel: q.Channel, Version: q.Version, Tag: q.Tag, Commit: q.Commit,
			State: q.State, Healthy: q.Healthy, Confirmed: q.Confirmed, Online: q.Online, Labels: q.Labels},
		Limit: q.Limit,
	}
	lat := make([]time.Duration, 0, pages)
	for range pages {
		start := time.Now()
		p, err := st.Devices(context.Background(), sq)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		sq.After = p.Next
	}
	slices.Sort(lat)
	return percentile(lat, 0.50)
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
