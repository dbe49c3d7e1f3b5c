package main

import (
	"fmt"
	"io"
	"time"
)

// A progress line shows how far long work has got. On a terminal it
// rewrites one line; otherwise it prints a line every quarter, so CI
// logs show movement without flooding.
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	last     time.Time
	lastTick int64
}

func newProgress(w io.Writer, tty bool, label string) *progress {
	return &progress{w: w, tty: tty, label: label, start: time.Now(), lastTick: -1}
}

func (p *progress) update(done, total int64) {
	now := time.Now()
	tick := int64(4)
	if total > 0 {
		tick = done * 4 / total
	}
	switch {
	case p.tty && now.Sub(p.last) < 100*time.Millisecond && done != total:
		return
	case !p.tty && tick == p.lastTick:
		return
	}
	p.last, p.lastTick = now, tick
	line := fmt.Sprintf("%s %s / %s (%3.0f%%) %s/s", p.label, mib(done), mib(total), percent(done, total), mib(int64(float64(done)/max(now.Sub(p.start).Seconds(), 1e-3))))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		if done == total {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

func percent(done, total int64) float64 {
	if total == 0 {
		return 100
	}
	return 100 * float64(done) / float64(total)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
