package gitsource

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"
)

// Poll fetches the repository and compares its release tags with prev: see
// Diff.
func (r *Repo) Poll(ctx context.Context, prev State) (Changes, State, error) {
	if err := r.Fetch(ctx); err != nil {
		return Changes{}, prev, err
	}
	tags, err := r.Tags()
	if err != nil {
		return Changes{}, prev, err
	}
	ch, next := Diff(prev, tags)
	return ch, next, nil
}

// A Watcher polls a repository at an interval, and at once when triggered
// by a webhook.
type Watcher struct {
	repo     *Repo
	interval time.Duration
	jitter   time.Duration
	log      *slog.Logger
	trigger  chan struct{}
}

// A Handler takes the changes of a poll and the State to keep from then
// on, typically persisting it (State.Save) once it has acted on them. If it
// returns an error, the Watcher keeps the old State, so the same changes
// come again at the next poll.
type Handler func(ctx context.Context, ch Changes, next State) error

// NewWatcher returns a watcher of repo that polls every interval plus a
// random delay of up to jitter, so that servers started together do not
// poll together. Failed polls are logged to log (slog.Default() if nil)
// and retried at the next interval.
func NewWatcher(repo *Repo, interval, jitter time.Duration, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{repo: repo, interval: interval, jitter: jitter, log: log, trigger: make(chan struct{}, 1)}
}

// Trigger makes the watcher poll now, as a webhook does when someone
// pushed. It never blocks; triggers that arrive during a poll make one
// more poll, not one each.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Run polls at once and then until ctx is done, starting from state, and
// calls handle whenever a poll finds changes (or the State changes
// otherwise). It returns nil when ctx is done, or the first error of
// handle wrapped.
func (w *Watcher) Run(ctx context.Context, state State, handle Handler) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-w.trigger:
			timer.Stop()
		}
		next, err := w.poll(ctx, state, handle)
		if err != nil {
			return err
		}
		state = next
		timer.Reset(w.delay())
	}
}

func (w *Watcher) poll(ctx context.Context, state State, handle Handler) (State, error) {
	ch, next, err := w.repo.Poll(ctx, state)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("poll git repository", "url", w.repo.cfg.URL, "err", err)
		}
		return state, nil
	}
	if ch.Empty() && reflect.DeepEqual(next, state) {
		return state, nil
	}
	if err := handle(ctx, ch, next); err != nil {
		if ctx.Err() != nil {
			return state, nil
		}
		return state, fmt.Errorf("handle changes of %s: %w", w.repo.cfg.URL, err)
	}
	return next, nil
}

func (w *Watcher) delay() time.Duration {
	if w.jitter <= 0 {
		return w.interval
	}
	return w.interval + rand.N(w.jitter)
}
