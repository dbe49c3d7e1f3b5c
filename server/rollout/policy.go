package rollout

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Policy is a channel's rollout policy, as fleet.yaml states it (see
// server/recipe, which parses it and fills in its defaults).
type Policy struct {
	// Waves are the cumulative shares of the channel's devices that the
	// successive waves reach, in percent: [1, 10, 50, 100] reaches 1 % of the
	// devices, then 10 %, 50 % and all of them. They increase strictly, each is
	// a whole number of basis points (a multiple of 0.01), and the last is 100.
	Waves []float64

	// WaveDuration is the soak time: how long a wave runs, at least, before
	// the next one starts. Zero lets a wave advance as soon as its devices
	// allow it.
	WaveDuration time.Duration

	// MaxFailureRate, from 0 to 1, is the highest failure rate a wave may
	// have. Above it the rollout halts; 0 halts on the first failure.
	MaxFailureRate float64

	// MinConfirmed is how many devices of a wave must have confirmed a
	// healthy boot of the release before the next wave starts; a wave with
	// fewer devices that have not failed needs all of those, and a wave with
	// any device needs at least one, even when MinConfirmed is 0. It is also
	// the smallest number of devices a wave's failure rate is counted over.
	MinConfirmed int

	// PenaltyAfter is how many failures of one release put a device in the
	// penalty box, where it is not offered that release again until its
	// failures are cleared. Zero means DefaultPenaltyAfter.
	PenaltyAfter int

	// RetryAfter is how long after a device's failure of the release, with
	// its failures below PenaltyAfter, the server orders it to try the
	// release again (ACTION_RETRY): a device never retries by itself. Zero
	// means DefaultRetryAfter.
	RetryAfter time.Duration
}

// DefaultPenaltyAfter is the penalty box's limit of a policy that sets
// none.
const DefaultPenaltyAfter = 3

// DefaultRetryAfter is the retry backoff of a policy that sets none.
const DefaultRetryAfter = 10 * time.Minute

// Validate returns an error naming the first field of p that Evaluate cannot
// use, and how to fix it, or nil.
func (p Policy) Validate() error {
	_, err := p.thresholds()
	return err
}

// thresholds returns the waves' thresholds in basis points, checking the
// whole policy on the way.
func (p Policy) thresholds() ([]uint32, error) {
	if len(p.Waves) == 0 {
		return nil, errors.New("rollout policy: waves: empty; give at least [100]")
	}
	ts := make([]uint32, len(p.Waves))
	for i, pct := range p.Waves {
		bp := math.Round(pct * 100)
		switch {
		case !(pct > 0 && pct <= 100):
			return nil, fmt.Errorf("rollout policy: waves[%d]: %s%% is not above 0 and at most 100", i, percent(pct))
		case math.Abs(pct*100-bp) > 1e-6:
			return nil, fmt.Errorf("rollout policy: waves[%d]: %s%% is not a whole number of basis points (a multiple of 0.01)", i, percent(pct))
		case i > 0 && uint32(bp) <= ts[i-1]:
			return nil, fmt.Errorf("rollout policy: waves[%d]: %s%% is not above waves[%d] (%s%%); waves must increase", i, percent(pct), i-1, percent(p.Waves[i-1]))
		}
		ts[i] = uint32(bp)
	}
	if last := len(ts) - 1; ts[last] != gitfleetv1.MaxThreshold {
		return nil, fmt.Errorf("rollout policy: waves[%d]: the last wave is %s%%, want 100 so the rollout reaches every device", last, percent(p.Waves[last]))
	}
	switch {
	case p.WaveDuration < 0:
		return nil, fmt.Errorf("rollout policy: wave duration: %v is negative", p.WaveDuration)
	case !(p.MaxFailureRate >= 0 && p.MaxFailureRate <= 1):
		return nil, fmt.Errorf("rollout policy: max failure rate: %v is not between 0 and 1 (0.05 is 5 %%)", p.MaxFailureRate)
	case p.MinConfirmed < 0:
		return nil, fmt.Errorf("rollout policy: min confirmed: %d is negative", p.MinConfirmed)
	case p.PenaltyAfter < 0:
		return nil, fmt.Errorf("rollout policy: penalty after: %d is negative; 0 means %d", p.PenaltyAfter, DefaultPenaltyAfter)
	case p.RetryAfter < 0:
		return nil, fmt.Errorf("rollout policy: retry after: %v is negative; 0 means %v", p.RetryAfter, DefaultRetryAfter)
	}
	return ts, nil
}

// penaltyAfter returns how many failures put a device in the penalty box.
func (p Policy) penaltyAfter() int {
	if p.PenaltyAfter == 0 {
		return DefaultPenaltyAfter
	}
	return p.PenaltyAfter
}

// retryAfter returns the backoff before a retry order.
func (p Policy) retryAfter() time.Duration {
	if p.RetryAfter == 0 {
		return DefaultRetryAfter
	}
	return p.RetryAfter
}

// percent formats a percentage without trailing zeros: 1, 0.5, 12.25.
func percent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64)
}
