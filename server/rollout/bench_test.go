package rollout

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// benchFleet returns n devices in a mix a rollout at its third wave sees:
// most confirmed or on the old release, some installing, failed, boxed or
// pinned.
func benchFleet(n int) []Device {
	rng := rand.New(rand.NewPCG(1, 1))
	kinds := []struct {
		weight int
		k      kind
	}{
		{60, confirmed}, {20, idle}, {8, installing}, {5, trial}, {3, failed(1)},
		{2, offline(idle)}, {1, with(failed(3), box)}, {1, with(newer, pin)},
	}
	ds := make([]Device, n)
	for i := range ds {
		r := rng.IntN(100)
		for _, k := range kinds {
			if r < k.weight {
				ds[i] = k.k(fmt.Sprintf("device-%08d", i))
				break
			}
			r -= k.weight
		}
	}
	return ds
}

// BenchmarkEvaluate100k measures one step of a rollout over 100,000
// devices, and beside it the floor no implementation avoids: computing
// each device's wave bucket (a SHA-256), measured in the same run, before
// and after, the faster kept. x-bucket-floor is the ratio of the two.
func BenchmarkEvaluate100k(b *testing.B) {
	const n = 100_000
	ds := benchFleet(n)
	ch := Channel{Fleet: "bench", Name: "production", Policy: Policy{
		Waves: []float64{1, 10, 50, 100}, WaveDuration: time.Hour, MaxFailureRate: 0.1, MinConfirmed: 50, PenaltyAfter: 3,
	}, Release: v140}
	cur := at(2, Active, t0.Add(-30*time.Minute))

	floor := bucketFloor(ch.Fleet, ds)
	b.ReportAllocs()
	var res *Result
	for b.Loop() {
		var err error
		if res, err = Evaluate(ch, cur, ds, t0); err != nil {
			b.Fatal(err)
		}
	}
	if res.Rollout.State != Active {
		b.Fatalf("rollout %s: %s", res.Rollout.State, res.Rollout.Reason)
	}
	perStep := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	floor = min(floor, bucketFloor(ch.Fleet, ds))
	b.ReportMetric(perStep/n, "ns/device")
	b.ReportMetric(float64(floor.Nanoseconds())/n, "ns/device-bucket-floor")
	b.ReportMetric(perStep/float64(floor.Nanoseconds()), "x-bucket-floor")
}

// bucketFloor returns the shortest of five passes computing the wave bucket
// of every device.
func bucketFloor(fleet string, ds []Device) time.Duration {
	best := time.Duration(1<<63 - 1)
	var sink uint32
	for range 5 {
		start := time.Now()
		for i := range ds {
			sink += gitfleetv1.WaveBucket(fleet, ds[i].ID)
		}
		best = min(best, time.Since(start))
	}
	if sink == 0 {
		best++ // keeps the loop from being optimized away; never matters
	}
	return best
}
