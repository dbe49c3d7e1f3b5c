// Package console talks to a board through its serial console: it opens the
// port (a USB-serial adapter or a pseudo-terminal, alike) with
// go.bug.st/serial, reads lines into a log with timestamps, waits for lines
// that match patterns (expect, with timeouts and "one of"), and sends lines
// and breaks.
package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// Config is how to open a serial port: the console section of a rig file.
type Config struct {
	// Port is the device: /dev/ttyUSB0, /dev/serial/by-id/…, or a
	// pseudo-terminal such as the virtual board's.
	Port string `yaml:"port"`
	// Baud defaults to 115200.
	Baud int `yaml:"baud"`
	// DataBits is 5 to 8; default 8.
	DataBits int `yaml:"data_bits"`
	// Parity is none, odd, even, mark or space; default none.
	Parity string `yaml:"parity"`
	// StopBits is 1, 1.5 or 2; default 1.
	StopBits string `yaml:"stop_bits"`
}

// Mode returns the serial mode c describes, or an error naming the field
// that is wrong.
func (c Config) Mode() (*serial.Mode, error) {
	m := &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits}
	if m.BaudRate == 0 {
		m.BaudRate = 115200
	}
	if m.BaudRate < 0 {
		return nil, fmt.Errorf("baud: %d: want a positive rate such as 115200", c.Baud)
	}
	if m.DataBits == 0 {
		m.DataBits = 8
	}
	if m.DataBits < 5 || m.DataBits > 8 {
		return nil, fmt.Errorf("data_bits: %d: want 5, 6, 7 or 8", c.DataBits)
	}
	switch strings.ToLower(c.Parity) {
	case "", "none", "n":
		m.Parity = serial.NoParity
	case "odd", "o":
		m.Parity = serial.OddParity
	case "even", "e":
		m.Parity = serial.EvenParity
	case "mark", "m":
		m.Parity = serial.MarkParity
	case "space", "s":
		m.Parity = serial.SpaceParity
	default:
		return nil, fmt.Errorf("parity: %q: want none, odd, even, mark or space", c.Parity)
	}
	switch c.StopBits {
	case "", "1":
		m.StopBits = serial.OneStopBit
	case "1.5":
		m.StopBits = serial.OnePointFiveStopBits
	case "2":
		m.StopBits = serial.TwoStopBits
	default:
		return nil, fmt.Errorf("stop_bits: %q: want 1, 1.5 or 2", c.StopBits)
	}
	return m, nil
}

// A Line is one line the board printed, without its line ending, and when
// its first byte arrived.
type Line struct {
	Time time.Time
	Text string
}

// Console is an open serial console. Its methods are safe to call from
// several goroutines, but one goroutine at a time should expect: each line
// is consumed by the Expect that matches it or passes over it.
type Console struct {
	port port
	done chan struct{} // closed when the reader has stopped

	mu       sync.Mutex
	pending  []Line // complete lines no Expect has consumed
	partial  []byte // the line being received
	partTime time.Time
	partUsed bool          // an Expect matched the partial line already
	changed  chan struct{} // closed and replaced when anything arrives
	log      io.Writer
	err      error // why the reader stopped
}

// port is what the console needs of a serial port.
type port interface {
	io.ReadWriteCloser
	Break(time.Duration) error
}

// readTimeout bounds each read, so partial lines (a prompt) are seen soon.
const readTimeout = 50 * time.Millisecond

// Open opens the serial port of cfg and starts reading it. Bytes the port
// buffered before Open are discarded: a console starts with what the board
// says from now on.
func Open(cfg Config) (*Console, error) {
	mode, err := cfg.Mode()
	if err != nil {
		return nil, fmt.Errorf("console %s: %w", cfg.Port, err)
	}
	p, err := serial.Open(cfg.Port, mode)
	if err != nil {
		return nil, fmt.Errorf("console %s: %w", cfg.Port, err)
	}
	if err := p.SetReadTimeout(readTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("console %s: %w", cfg.Port, err)
	}
	p.ResetInputBuffer()
	return newConsole(p), nil
}

func newConsole(p port) *Console {
	c := &Console{port: p, done: make(chan struct{}), changed: make(chan struct{}), log: io.Discard}
	go c.read()
	return c
}

// SetLog sends the lines received from now on to w, each as
// "15:04:05.000 text". The runner gives each scenario its own log.
func (c *Console) SetLog(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w == nil {
		w = io.Discard
	}
	c.log = w
}

// Close closes the port and waits for the reader to stop.
func (c *Console) Close() error {
	err := c.port.Close()
	<-c.done
	return err
}

func (c *Console) read() {
	defer close(c.done)
	buf := make([]byte, 4096)
	for {
		n, err := c.port.Read(buf)
		now := time.Now()
		c.mu.Lock()
		for _, b := range buf[:n] {
			if len(c.partial) == 0 {
				c.partTime = now
			}
			if b == '\n' {
				c.completeLocked()
				continue
			}
			c.partial = append(c.partial, b)
		}
		if err != nil {
			c.err = err
		}
		if n > 0 || err != nil {
			close(c.changed)
			c.changed = make(chan struct{})
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// completeLocked ends the partial line: logs it and queues it, unless an
// Expect consumed it already (a prompt, followed by the echo of a command).
func (c *Console) completeLocked() {
	l := Line{Time: c.partTime, Text: clean(c.partial)}
	fmt.Fprintf(c.log, "%s %s\n", l.Time.Format("15:04:05.000"), l.Text)
	if !c.partUsed {
		c.pending = append(c.pending, l)
	}
	c.partial, c.partUsed = c.partial[:0], false
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// clean returns what a terminal shows of a raw line: no line ending, no
// escape sequences, and after a carriage return only what overwrote the
// line (a progress line redrawn in place).
func clean(raw []byte) string {
	raw = bytes.TrimRight(raw, "\r")
	if i := bytes.LastIndexByte(raw, '\r'); i >= 0 {
		raw = raw[i+1:]
	}
	return escapes.ReplaceAllString(string(raw), "")
}

// Send writes line and a carriage return, as pressing Enter in a terminal
// does.
func (c *Console) Send(line string) error {
	if _, err := c.port.Write([]byte(line + "\r")); err != nil {
		return fmt.Errorf("console: send: %w", err)
	}
	return nil
}

// Break sends a break of duration d (on a pseudo-terminal it is accepted and
// has no effect).
func (c *Console) Break(d time.Duration) error {
	var err error
	// The break's ioctl can be interrupted by a signal (Go's own preemption
	// signal among them): sending it again is harmless.
	for range 5 {
		if err = c.port.Break(d); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("console: break: %w", err)
	}
	return nil
}

// Discard consumes every line received so far, so the next Expect sees
// only what the board says after it.
func (c *Console) Discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = nil
	if len(c.partial) > 0 {
		c.partUsed = true
	}
}

// A Match is the line that an Expect matched.
type Match struct {
	// Index is which of the patterns matched.
	Index int
	Line  Line
	// Groups are the pattern's submatches; Groups[0] is the whole match.
	Groups []string
	// Before are the lines the Expect passed over before the match.
	Before []Line
}

// A TimeoutError is an Expect that saw no matching line in time.
type TimeoutError struct {
	Patterns []*regexp.Regexp
	Timeout  time.Duration
	// Last is the last line received, if any.
	Last string
}

func (e *TimeoutError) Error() string {
	var pats []string
	for _, p := range e.Patterns {
		pats = append(pats, fmt.Sprintf("%q", p.String()))
	}
	msg := fmt.Sprintf("no console line matched %s within %s", strings.Join(pats, " or "), e.Timeout)
	if e.Last != "" {
		msg += fmt.Sprintf(" (last line: %q)", e.Last)
	}
	return msg
}

// ErrClosed: the console's port was closed, or failed.
var ErrClosed = errors.New("console closed")

// Expect waits up to timeout for a line that matches one of patterns, and
// consumes it and every line before it. A pattern is tried on each
// complete line, and on the line being received, so that a prompt with no
// newline after it matches. When several patterns match one line, the first
// of them wins.
func (c *Console) Expect(ctx context.Context, timeout time.Duration, patterns ...*regexp.Regexp) (Match, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var before []Line
	for {
		c.mu.Lock()
		for len(c.pending) > 0 {
			l := c.pending[0]
			c.pending = c.pending[1:]
			if m, ok := match(patterns, l); ok {
				c.mu.Unlock()
				m.Before = before
				return m, nil
			}
			before = append(before, l)
		}
		if len(c.partial) > 0 && !c.partUsed {
			l := Line{Time: c.partTime, Text: clean(c.partial)}
			if m, ok := match(patterns, l); ok {
				c.partUsed = true
				c.mu.Unlock()
				m.Before = before
				return m, nil
			}
		}
		changed, err := c.changed, c.err
		last := ""
		if len(before) > 0 {
			last = before[len(before)-1].Text
		}
		if len(c.partial) > 0 {
			last = clean(c.partial)
		}
		c.mu.Unlock()
		if err != nil {
			return Match{Before: before}, fmt.Errorf("%w: %v", ErrClosed, err)
		}
		select {
		case <-changed:
		case <-timer.C:
			return Match{Before: before}, &TimeoutError{Patterns: patterns, Timeout: timeout, Last: last}
		case <-ctx.Done():
			return Match{Before: before}, ctx.Err()
		}
	}
}

func match(patterns []*regexp.Regexp, l Line) (Match, bool) {
	for i, p := range patterns {
		if g := p.FindStringSubmatch(l.Text); g != nil {
			return Match{Index: i, Line: l, Groups: g}, true
		}
	}
	return Match{}, false
}
