package rollout

import (
	"fmt"
	"time"
)

// gate is what decides whether one wave may advance, and whether it fails
// too often.
type gate struct {
	wave     int
	percent  float64
	max      float64
	finished int // confirmed + failed

	confirmed int
	failed    int
	excused   int // of failed, accepted by an operator's resume

	// need is how many confirmed boots the wave needs to advance:
	// MinConfirmed, or every device of the wave that has not failed if there
	// are fewer, but at least one if the wave has any device.
	need int

	// sample is the fewest devices the failure rate is counted over:
	// MinConfirmed, or the wave's size if smaller. Counting over at least
	// this many keeps one early failure in a big wave from halting it, while
	// a wave of failures with no successes still halts.
	sample int

	soaked, soak time.Duration
}

// gate returns wave i's gate.
func (e *step) gate(i int) gate {
	w := e.res.Waves[i]
	pol := e.ch.Policy
	g := gate{
		wave:      i,
		percent:   w.Percent,
		max:       pol.MaxFailureRate,
		confirmed: w.Confirmed,
		failed:    w.Failed,
		finished:  w.Confirmed + w.Failed,
		need:      min(pol.MinConfirmed, w.Targeted-w.Failed),
		sample:    min(pol.MinConfirmed, w.Targeted),
		soaked:    e.now.Sub(e.next.WaveStarted),
		soak:      pol.WaveDuration,
	}
	if i < len(e.next.Excused) {
		g.excused = min(e.next.Excused[i], w.Failed)
	}
	if w.Targeted > 0 {
		g.need = max(g.need, 1)
	}
	return g
}

// counted is the number of failures the rate counts: those not excused.
func (g gate) counted() int { return g.failed - g.excused }

// over is the number of devices the rate is counted over.
func (g gate) over() int { return max(g.finished, g.sample) }

// rate is the wave's failure rate.
func (g gate) rate() float64 {
	if g.over() == 0 {
		return 0
	}
	return float64(g.counted()) / float64(g.over())
}

// exceeded reports whether the wave's failure rate is above the maximum.
func (g gate) exceeded() bool { return g.rate() > g.max }

// confirmedEnough reports whether the wave has the confirmed boots it needs.
func (g gate) confirmedEnough() bool { return g.confirmed >= g.need }

// soakedEnough reports whether the wave ran for the policy's wave duration.
func (g gate) soakedEnough() bool { return g.soaked >= g.soak }

// open reports whether the wave may advance.
func (g gate) open() bool {
	return g.confirmedEnough() && !g.exceeded() && g.soakedEnough()
}

// name is the wave as messages name it: "wave 2 (50%)".
func (g gate) name() string {
	return fmt.Sprintf("wave %d (%s%%)", g.wave, percent(g.percent))
}

// failedText says how many of the wave's devices failed, for messages: "1
// of 20 (5.0%)".
func (g gate) failedText() string {
	s := fmt.Sprintf("%d of %d (%.1f%%)", g.counted(), g.over(), 100*g.rate())
	if g.excused > 0 {
		s += fmt.Sprintf(" plus %d excused", g.excused)
	}
	return s
}

// devices counts devices for messages: "1 device", "2 devices".
func devices(n int) string {
	if n == 1 {
		return "1 device"
	}
	return fmt.Sprintf("%d devices", n)
}

// haltReason says why the wave halts the rollout, such as
// "halted: 3 of 20 devices in wave 2 (50%) failed (15.0% > max 10.0%)".
func (g gate) haltReason() string {
	var s string
	if g.finished >= g.sample {
		s = fmt.Sprintf("halted: %d of %s in %s failed (%.1f%% > max %.1f%%)",
			g.counted(), devices(g.over()), g.name(), 100*g.rate(), 100*g.max)
	} else {
		s = fmt.Sprintf("halted: %s in %s failed with %d finished (%.1f%% of the minimum sample of %d > max %.1f%%)",
			devices(g.counted()), g.name(), g.finished, 100*g.rate(), g.sample, 100*g.max)
	}
	if g.excused > 0 {
		s += fmt.Sprintf("; %d earlier failed and were excused", g.excused)
	}
	return s
}
