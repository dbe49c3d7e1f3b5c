// Package health runs the checks that decide whether a freshly booted
// release is healthy enough to commit: commands with timeouts (a systemd
// unit is active, an application answers), and checks the agent itself
// provides, such as "the MQTT broker is reachable".
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// A Check is one named health check.
type Check struct {
	Name string
	// Run returns nil when the check passes.
	Run func(ctx context.Context) error
	// Timeout bounds Run; zero means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds a check that sets no timeout of its own.
const DefaultTimeout = time.Minute

// A Result is the outcome of one check.
type Result struct {
	Name    string
	OK      bool
	Message string
}

// A Checker runs every check; the release is healthy only if all pass.
type Checker struct {
	Checks []Check
	// Last holds the results of the last Check call.
	Last []Result
}

// Check runs the checks in order, all of them even after a failure (the
// server shows every result), and returns an error naming the first that
// failed.
func (c *Checker) Check(ctx context.Context) error {
	c.Last = c.Last[:0]
	var first error
	for _, ch := range c.Checks {
		timeout := ch.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := ch.Run(cctx)
		if err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := Result{Name: ch.Name, OK: err == nil}
		if err != nil {
			r.Message = err.Error()
			if first == nil {
				first = fmt.Errorf("health check %s: %w", ch.Name, err)
			}
		}
		c.Last = append(c.Last, r)
	}
	return first
}

// Command returns a check that runs argv and passes if it exits 0. On
// failure the message carries the tail of its output. On timeout the whole
// process group is killed, so a hung script leaves nothing behind.
func Command(name string, argv []string, timeout time.Duration) Check {
	return Check{Name: name, Timeout: timeout, Run: func(ctx context.Context) error {
		if len(argv) == 0 {
			return errors.New("no command")
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tail := lastLine(out.String()); tail != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, tail)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return s
}
