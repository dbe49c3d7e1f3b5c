package rollout

import (
	"fmt"
	"strings"
	"sync"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// The test channel: fleet "acme", waves of 10, 50 and 100 %.
const testFleet = "acme"

var (
	testPolicy = Policy{
		Waves:          []float64{10, 50, 100},
		WaveDuration:   time.Hour,
		MaxFailureRate: 0.2,
		MinConfirmed:   3,
		PenaltyAfter:   2,
	}
	v130 = Release{Version: "1.3.0", Digest: testDigest("1.3.0"), Commit: strings.Repeat("3", 40)}
	v140 = Release{Version: "1.4.0", Digest: testDigest("1.4.0"), Commit: strings.Repeat("4", 40)}
	v150 = Release{Version: "1.5.0", Digest: testDigest("1.5.0"), Commit: strings.Repeat("5", 40)}
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func testDigest(version string) string {
	return fmt.Sprintf("sha256:%064x", []byte(version))
}

func testChannel(p Policy) Channel {
	return Channel{Fleet: testFleet, Name: "production", Policy: p, Release: v140}
}

var (
	idsOnce   sync.Once
	idsByWave [3][]string
)

// ids returns n device ids of the test fleet whose buckets fall in wave w
// of testPolicy: the same ids every time.
func ids(w, n int) []string {
	idsOnce.Do(func() {
		waves := []*gitfleetv1.Wave{{Threshold: 1000}, {Threshold: 5000}, {Threshold: 10000}}
		for i := 0; len(idsByWave[0]) < 100; i++ {
			id := fmt.Sprintf("dev-%05d", i)
			w := waveOf(waves, gitfleetv1.WaveBucket(testFleet, id))
			idsByWave[w] = append(idsByWave[w], id)
		}
	})
	return idsByWave[w][:n]
}

// A kind makes a device with an id.
type kind func(id string) Device

// in gives the first devices of wave w the kinds ks, in order.
func in(w int, ks ...kind) []Device {
	var ds []Device
	for i, id := range ids(w, len(ks)) {
		ds = append(ds, ks[i](id))
	}
	return ds
}

// times repeats k n times.
func times(n int, k kind) []kind {
	ks := make([]kind, n)
	for i := range ks {
		ks[i] = k
	}
	return ks
}

func fleet(parts ...[]Device) []Device {
	var ds []Device
	for _, p := range parts {
		ds = append(ds, p...)
	}
	return ds
}

// runs makes a device that runs r, confirmed, and is idle.
func runs(r Release) kind {
	return func(id string) Device {
		return Device{ID: id, Online: true, Version: r.Version, Digest: r.Digest, Commit: r.Commit,
			Slot: "a", Confirmed: true, UpdateState: "idle"}
	}
}

var (
	confirmed = runs(v140)
	idle      = runs(v130)
	newer     = runs(v150)
)

// trial runs 1.4.0 without having confirmed it: installed, not confirmed.
func trial(id string) Device {
	d := confirmed(id)
	d.Confirmed, d.UpdateState, d.Slot = false, "testing", "b"
	return d
}

// installing runs 1.3.0 and writes 1.4.0.
func installing(id string) Device {
	d := idle(id)
	d.UpdateState, d.TargetDigest = "writing", v140.Digest
	return d
}

// failed runs 1.3.0 after failing 1.4.0 n times.
func failed(n int) kind {
	return func(id string) Device {
		d := idle(id)
		d.Failures, d.LastError = n, gitfleetv1.ErrorCode_ERROR_CODE_ROLLED_BACK
		return d
	}
}

func offline(k kind) kind {
	return func(id string) Device {
		d := k(id)
		d.Online = false
		return d
	}
}

func with(k kind, f func(*Device)) kind {
	return func(id string) Device {
		d := k(id)
		f(&d)
		return d
	}
}

// at is a rollout of 1.4.0 at wave w in state s, in it since started.
func at(w int, s State, started time.Time) Rollout {
	return Rollout{Digest: v140.Digest, Version: v140.Version, Wave: w, State: s,
		Since: started, WaveStarted: started, Reason: "before", LastApplied: v130.Commit}
}

func condition(cs []Condition, t ConditionType) Condition {
	for _, c := range cs {
		if c.Type == t {
			return c
		}
	}
	return Condition{Type: t, Reason: "missing"}
}
