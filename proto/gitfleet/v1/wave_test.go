package gitfleetv1

import (
	"fmt"
	"testing"
)

// TestWaveBucket pins the bucket function. Server and devices of different
// builds must agree on it, so these goldens never change.
func TestWaveBucket(t *testing.T) {
	tests := []struct {
		name     string
		fleet    string
		deviceID string
		want     uint32
	}{
		{name: "device", fleet: "acme", deviceID: "dev-1", want: 870},
		{name: "neighbour", fleet: "acme", deviceID: "dev-2", want: 9503},
		{name: "same id in another fleet", fleet: "other", deviceID: "dev-1", want: 3880},
		{name: "MAC address", fleet: "acme", deviceID: "b8:27:eb:12:34:56", want: 6415},
		{name: "empty", fleet: "", deviceID: "", want: 6051},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WaveBucket(tt.fleet, tt.deviceID); got != tt.want {
				t.Errorf("WaveBucket(%q, %q) = %d, want %d", tt.fleet, tt.deviceID, got, tt.want)
			}
		})
	}
}

// TestWaveBucketSpread checks that a wave of threshold t reaches about t/10000
// of a fleet, so wave sizes in a rollout policy mean what they say.
func TestWaveBucketSpread(t *testing.T) {
	const devices = 20000
	var perDecile [10]int
	for i := range devices {
		perDecile[WaveBucket("acme", fmt.Sprintf("dev-%05d", i))/1000]++
	}
	for d, n := range perDecile {
		// Deterministic input, so this is a fixed fact, not a flaky bound:
		// each tenth of the buckets holds 2000 ± 10% of the devices.
		if n < 1800 || n > 2200 {
			t.Errorf("buckets %d..%d hold %d of %d devices, want about %d", d*1000, d*1000+999, n, devices, devices/10)
		}
	}
}

func TestWaveIncludes(t *testing.T) {
	tests := []struct {
		name   string
		wave   *Wave
		bucket uint32
		want   bool
	}{
		{name: "below threshold", wave: &Wave{Threshold: 1000}, bucket: 999, want: true},
		{name: "at threshold", wave: &Wave{Threshold: 1000}, bucket: 1000, want: false},
		{name: "zero threshold", wave: &Wave{}, bucket: 0, want: false},
		{name: "full wave", wave: &Wave{Threshold: MaxThreshold}, bucket: MaxThreshold - 1, want: true},
		{name: "nil wave", wave: nil, bucket: 0, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.wave.Includes(tt.bucket); got != tt.want {
				t.Errorf("got %t, want %t", got, tt.want)
			}
		})
	}
}
