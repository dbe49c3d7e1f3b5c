package gitsource

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"
)

// Poll fetches the repository and compares its release tags and branch
// head with prev: see Diff for the tags; Changes.Head is the branch's head
// when it moved.
func (r *Repo) Poll(ctx context.Context, prev State) (Changes, State, error) {
	if err := r.Fetch(ctx); err != nil {
		return Changes{}, prev, err
	}
	tags, err := r.Tags()
	if err != nil {
		return Changes{}, prev, err
	}
	head, err := r.Head()
	if err != nil {
		return Changes{}, prev, err
	}
	ch, next := Diff(prev, tags)
	if head != prev.Head {
		ch.Head, next.Head = head, head
	}
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
// returns an error, the Watcher logs it and keeps the old State, so the
// same changes come again at the next poll.
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
// otherwise). It returns nil when ctx is done. Failed polls and handler
// errors are logged and tried again at the next poll.
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
		state = w.poll(ctx, state, handle)
		timer.Reset(w.delay())
	}
}

// poll polls once and returns the State to keep.
func (w *Watcher) poll(ctx context.Context, state State, handle Handler) State {
	ch, next, err := w.repo.Poll(ctx, state)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("poll git repository", "url", w.repo.cfg.URL, "err", err)
		}
		return state
	}
	if ch.Empty() && reflect.DeepEqual(next, state) {
		return state
	}
	if err := handle(ctx, ch, next); err != nil {
		if ctx.Err() == nil {
			w.log.Error("handle changes of git repository; they come again at the next poll", "url", w.repo.cfg.URL, "err", err)
		}
		return state
	}
	return next
}

func (w *Watcher) delay() time.Duration {
	if w.jitter <= 0 {
		return w.interval
	}
	return w.interval + rand.N(w.jitter)
}
