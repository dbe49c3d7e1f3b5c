package rollout

import (
	"math"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Policy)
		want   string // "" for valid
	}{
		{"four waves", func(*Policy) {}, ""},
		{"one wave of everything", func(p *Policy) { p.Waves = []float64{100} }, ""},
		{"basis points", func(p *Policy) { p.Waves = []float64{0.01, 0.5, 12.25, 100} }, ""},
		{"zero soak", func(p *Policy) { p.WaveDuration = 0 }, ""},
		{"rates at the bounds", func(p *Policy) { p.MaxFailureRate = 1 }, ""},
		{"no waves", func(p *Policy) { p.Waves = nil }, "rollout policy: waves: empty; give at least [100]"},
		{"zero wave", func(p *Policy) { p.Waves = []float64{0, 100} }, "rollout policy: waves[0]: 0% is not above 0 and at most 100"},
		{"wave above 100", func(p *Policy) { p.Waves = []float64{10, 150} }, "rollout policy: waves[1]: 150% is not above 0 and at most 100"},
		{"NaN wave", func(p *Policy) { p.Waves = []float64{math.NaN(), 100} }, "rollout policy: waves[0]: NaN% is not above 0 and at most 100"},
		{"finer than a basis point", func(p *Policy) { p.Waves = []float64{0.005, 100} }, "rollout policy: waves[0]: 0.005% is not a whole number of basis points (a multiple of 0.01)"},
		{"not increasing", func(p *Policy) { p.Waves = []float64{10, 10, 100} }, "rollout policy: waves[1]: 10% is not above waves[0] (10%); waves must increase"},
		{"last below 100", func(p *Policy) { p.Waves = []float64{10, 50} }, "rollout policy: waves[1]: the last wave is 50%, want 100 so the rollout reaches every device"},
		{"negative soak", func(p *Policy) { p.WaveDuration = -time.Second }, "rollout policy: wave duration: -1s is negative"},
		{"rate above 1", func(p *Policy) { p.MaxFailureRate = 5 }, "rollout policy: max failure rate: 5 is not between 0 and 1 (0.05 is 5 %)"},
		{"NaN rate", func(p *Policy) { p.MaxFailureRate = math.NaN() }, "rollout policy: max failure rate: NaN is not between 0 and 1 (0.05 is 5 %)"},
		{"no minimum of confirmations", func(p *Policy) { p.MinConfirmed = 0 }, ""},
		{"default penalty box", func(p *Policy) { p.PenaltyAfter = 0 }, ""},
		{"negative confirmations", func(p *Policy) { p.MinConfirmed = -1 }, "rollout policy: min confirmed: -1 is negative"},
		{"negative penalty", func(p *Policy) { p.PenaltyAfter = -1 }, "rollout policy: penalty after: -1 is negative; 0 means 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy
			p.Waves = []float64{1, 10, 50, 100}
			tt.change(&p)
			err := p.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPolicyThresholds(t *testing.T) {
	p := testPolicy
	p.Waves = []float64{0.01, 1, 12.5, 33.33, 100}
	got, err := p.thresholds()
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{1, 100, 1250, 3333, 10000}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("thresholds %v, want %v", got, want)
			break
		}
	}
}
