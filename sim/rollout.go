package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// A Wave is when the server advertised a wave of a rollout, as its channel
// status showed it.
type Wave struct {
	Index int `json:"index"`
	// At is seconds since the rollout's start (Outcome's Since).
	At float64 `json:"at_s"`
}

// An Outcome is how a channel's rollout of a version ended, as the server's
// channel status shows it.
type Outcome struct {
	Version string `json:"version"`
	// State is the rollout's last state: "complete", "halted", "aborted",
	// "settled" (active, with every targeted device confirmed or failed and
	// some failed: a rollout with failures never completes), or the state it was in when
	// the wait ended.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Waves  []Wave `json:"waves"`
	// Counts are the channel's device counts at the end.
	Counts apiclient.Counts `json:"counts"`
	// Since is when the wait started counting (the tag's push); Elapsed the
	// seconds from then until the rollout ended.
	Since   time.Time `json:"since"`
	Elapsed float64   `json:"elapsed_s"`
}

// Ended reports whether a rollout in state (as Outcome.State says it) has
// ended.
func Ended(state string) bool {
	switch state {
	case "complete", "halted", "aborted", "settled":
		return true
	}
	return false
}

// stateOf returns the rollout's state, in lower case. The API says
// "ACTIVE" for a complete rollout too, and puts its completion in the
// condition Ready.
func stateOf(ch apiclient.Channel) string {
	for _, c := range ch.Conditions {
		if c.Type == "Ready" && c.Status && c.Reason == "Complete" {
			return "complete"
		}
	}
	return strings.ToLower(ch.State)
}

// settled reports whether every targeted device confirmed or failed, some
// failed: such a rollout stays active, while one without failures goes on
// to complete.
func settled(c *apiclient.Counts) bool {
	return c != nil && c.Failed > 0 && c.Confirmed+c.Failed == c.Targeted
}

// ErrNotEnded is returned by WaitRollout when ctx ends first.
var ErrNotEnded = errors.New("the rollout did not end")

// WaitRollout follows channel's status until its rollout of version ends:
// complete (every targeted device confirmed), settled (every one confirmed
// or failed) or stopped (halted or aborted),
// calling progress with each status it reads. since is when the release
// was tagged, from which waves and the end are timed.
func WaitRollout(ctx context.Context, api *apiclient.Client, channel, version string, since time.Time, every time.Duration, progress func(apiclient.Channel)) (Outcome, error) {
	out := Outcome{Version: version, Since: since, Waves: []Wave{}}
	for {
		ch, err := api.Channel(ctx, channel)
		if err == nil && ch.Release == version {
			if n := len(out.Waves); n == 0 || out.Waves[n-1].Index != ch.Wave {
				out.Waves = append(out.Waves, Wave{Index: ch.Wave, At: time.Since(since).Seconds()})
			}
			out.State, out.Reason = stateOf(ch), ch.Reason
			if ch.Counts != nil {
				out.Counts = *ch.Counts
			}
			if progress != nil {
				progress(ch)
			}
			if settled(ch.Counts) && out.State == "active" {
				out.State = "settled"
			}
			if Ended(out.State) {
				out.Elapsed = time.Since(since).Seconds()
				return out, nil
			}
		}
		if !sleep(ctx, every) {
			if err != nil {
				return out, fmt.Errorf("%w: %w (last error: %v)", ErrNotEnded, ctx.Err(), err)
			}
			return out, fmt.Errorf("%w: %w", ErrNotEnded, ctx.Err())
		}
	}
}
