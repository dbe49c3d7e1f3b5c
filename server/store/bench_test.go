package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"
)

// benchFleet returns n devices with a realistic mix of channels, versions,
// states and health, the same on every run.
func benchFleet(n int, at time.Time) []Device {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(choices ...string) string { return choices[rng.IntN(len(choices))] }
	percent := func(p int) bool { return rng.IntN(100) < p }
	ds := make([]Device, n)
	for i := range ds {
		d := Device{
			ID:           fmt.Sprintf("dev-%06d", i),
			Fleet:        "acme",
			DeviceType:   pick("rpi4", "rpi4", "imx8"),
			Channel:      "production",
			AgentVersion: "0.9.0",
			BootID:       fmt.Sprintf("boot-%08x", rng.Uint32()),
			BootedSlot:   pick("a", "b"),
			Version:      "1.4.0",
			UpdateState:  "idle",
			HealthOK:     percent(98),
			HealthChecks: []HealthCheck{{Name: "network", OK: true}, {Name: "app", OK: true}},
			Online:       percent(93),
			StatusTime:   at,
			LastSeen:     at,
		}
		switch r := rng.IntN(100); {
		case r < 5:
			d.Channel = "canary"
		case r < 20:
			d.Channel = "staging"
		}
		switch r := rng.IntN(100); {
		case r < 5:
			d.Version = "1.5.0-rc.1"
		case r < 30:
			d.Version = "1.5.0"
		}
		switch r := rng.IntN(100); {
		case r < 1:
			d.UpdateState = "failed"
		case r < 4:
			d.UpdateState = "trial-boot"
		case r < 10:
			d.UpdateState = "downloading"
			d.TargetVersion, d.DoneBytes, d.TotalBytes = "1.5.0", rng.Int64N(1<<28), 1<<28
		}
		d.BootConfirmed = d.UpdateState != "trial-boot" && percent(99)
		d.ActiveSlot = d.BootedSlot
		d.Tag = "v" + d.Version
		d.Commit = fmt.Sprintf("%040x", len(d.Version)*7919)
		d.BundleDigest = fmt.Sprintf("sha256:%064x", len(d.Version)*104729)
		ds[i] = d
	}
	return ds
}

// BenchmarkListDevices100k measures the device list on 100,000 devices: an
// op is one filtered page of DefaultPage devices, walking the filter's pages
// with the cursor and starting over at the end. It reports the median and the
// 99th percentile of the page's latency (p50-ms, p99-ms), which the HTTP API
// wants at most 50 ms, and the median against the floor measured in the same
// run, that of an unfiltered page (p50/floor).
func BenchmarkListDevices100k(b *testing.B) {
	const n = 100_000
	queries := []struct {
		name   string
		filter DeviceFilter
	}{
		// As the floor: no filter, a page is the next 100 by primary key.
		{"unfiltered", DeviceFilter{}},
		// Most devices match: a page is the first 100 in id order.
		{"channel+online", DeviceFilter{Channel: "production", Online: ptr(true)}},
		// About 1% match, on three columns.
		{"channel+version+state", DeviceFilter{Channel: "production", Version: "1.5.0", State: "downloading"}},
		// About 2% match, on one boolean.
		{"unhealthy", DeviceFilter{Healthy: ptr(false)}},
		// About 0.5% match, on two booleans.
		{"offline+unconfirmed", DeviceFilter{Online: ptr(false), Confirmed: ptr(false)}},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			ctx := context.Background()
			s := openStore(b, e.dsn(b))
			start := time.Now()
			if _, err := s.PutDevices(ctx, benchFleet(n, start)); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: inserted %d devices in one transaction in %v", e.name, n, time.Since(start).Round(time.Millisecond))
			// The steady state: the planner knows the data.
			if err := s.Optimize(ctx); err != nil {
				b.Fatal(err)
			}
			floor := median(pageLatencies(b, s, DeviceFilter{}, 500))
			for _, q := range queries {
				want, err := s.CountDevices(ctx, q.filter)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(q.name, func(b *testing.B) {
					b.Logf("%d of %d devices match", want, n)
					var lat []time.Duration
					query := DeviceQuery{DeviceFilter: q.filter}
					for b.Loop() {
						lat = append(lat, timePage(b, s, &query))
					}
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
					b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
					b.ReportMetric(float64(percentile(lat, 0.50))/float64(floor), "p50/floor")
				})
			}
		})
	}
}

// timePage times the page q selects and moves q to the next page, or back to
// the first after the last.
func timePage(b *testing.B, s *Store, q *DeviceQuery) time.Duration {
	t0 := time.Now()
	p, err := s.Devices(context.Background(), *q)
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	q.After = p.Next
	return d
}

// pageLatencies times n pages of the devices f matches, sorted.
func pageLatencies(b *testing.B, s *Store, f DeviceFilter, n int) []time.Duration {
	lat := make([]time.Duration, 0, n)
	q := DeviceQuery{DeviceFilter: f}
	for range n {
		lat = append(lat, timePage(b, s, &q))
	}
	slices.Sort(lat)
	return lat
}

// percentile returns the p-th quantile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(p*float64(len(sorted)-1))]
}

func median(sorted []time.Duration) time.Duration { return percentile(sorted, 0.5) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPutDevices measures how many statuses per second PutDevices
// writes into a fleet of 100,000 devices, in batches of 256 devices in no
// order, as the ingest hands them over: an op is one status. "heartbeat"
// statuses change only the device's time and progress, which no index
// holds; "change" statuses move each device to another update state, which
// the device list filters on. It reports rows/s and the CPU time this
// process spent a row (all of SQLite's, none of PostgreSQL's), which
// depends less on what else the machine runs.
func BenchmarkPutDevices(b *testing.B) {
	const n, batch = 100_000, 256
	for _, e := range engines {
		for _, kind := range []string{"heartbeat", "change"} {
			b.Run(e.name+"/"+kind, func(b *testing.B) {
				ctx := context.Background()
				s := openStore(b, e.dsn(b))
				at := time.Now().Add(-time.Hour)
				fleet := benchFleet(n, at)
				if _, err := s.PutDevices(ctx, fleet); err != nil {
					b.Fatal(err)
				}
				if err := s.Optimize(ctx); err != nil {
					b.Fatal(err)
				}
				order := rand.New(rand.NewPCG(3, 4)).Perm(n)
				next := make([]Device, 0, batch)
				b.ResetTimer()
				cpu := processCPU()
				for i := 0; i < b.N; i += batch {
					next = next[:0]
					for j := i; j < min(i+batch, b.N); j++ {
						d := fleet[order[j%n]]
						d.StatusTime = at.Add(time.Duration(j+1) * time.Millisecond)
						d.LastSeen = d.StatusTime
						d.DoneBytes++
						if kind == "change" {
							d.UpdateState = fmt.Sprintf("state-%d", j/n)
						}
						next = append(next, d)
					}
					stale, err := s.PutDevices(ctx, next)
					if err != nil {
						b.Fatal(err)
					}
					if len(stale) > 0 {
						b.Fatalf("%d stale statuses, want none", len(stale))
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/row")
			})
		}
	}
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
