// Package progress prints how far long work has got: one rewritten line on
// a terminal, a line every quarter otherwise, so CI logs show movement
// without flooding.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"
)

// A Line shows the progress of one piece of work.
type Line struct {
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	last     time.Time
	lastTick int64
}

// New returns a Line writing to w, labelled label. If w is a terminal the
// line is rewritten in place.
func New(w io.Writer, label string) *Line {
	return &Line{w: w, tty: isTerminal(w), label: label, start: time.Now(), lastTick: -1}
}

// Relabel starts a new phase of the work under another label.
func (p *Line) Relabel(label string) {
	p.label, p.lastTick, p.start = label, -1, time.Now()
}

// Update reports that done of total bytes are processed.
func (p *Line) Update(done, total int64) {
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
	line := fmt.Sprintf("%s %s / %s (%3.0f%%) %s/s", p.label, MiB(done), MiB(total), percent(done, total), MiB(int64(float64(done)/max(now.Sub(p.start).Seconds(), 1e-3))))
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

// MiB formats a byte count in MiB.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
