package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/agent/slot"
)

// DefaultScriptTimeout is how long a command of a Script may run when
// Commands.Timeout is 0.
const DefaultScriptTimeout = 30 * time.Second

// Commands are the user's commands for a bootloader this package does not
// know. Each is a program and its arguments, run without a shell, with the
// group (A or B) appended as the last argument.
type Commands struct {
	// Arm makes the next boot try the group, counting boots and falling
	// back as the bootloader does.
	Arm []string `yaml:"arm"`
	// Commit makes the group the default and ends the trial.
	Commit []string `yaml:"commit"`
	// Revert makes the group, the old one, the default and ends the trial.
	Revert []string `yaml:"revert"`
	// Timeout bounds each run; the command and every process it started
	// are killed then. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate returns an error naming the field and the fix if a command is
// missing or the timeout negative.
func (c Commands) Validate() error {
	for _, cmd := range []struct {
		field string
		argv  []string
	}{{"arm", c.Arm}, {"commit", c.Commit}, {"revert", c.Revert}} {
		if len(cmd.argv) == 0 || cmd.argv[0] == "" {
			return fmt.Errorf("boot script: %s is empty: give the program to run and its arguments, the group is appended", cmd.field)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("boot script: timeout is %s: want a positive duration, or 0 for %s", c.Timeout, DefaultScriptTimeout)
	}
	return nil
}

// Script is the bootloader backend that runs the user's Commands. A command
// succeeds when it exits 0; its standard output is discarded, and the end of
// its standard error is in the error when it fails.
type Script struct {
	c Commands
}

// NewScript returns the backend that runs c.
func NewScript(c Commands) (*Script, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultScriptTimeout
	}
	return &Script{c: c}, nil
}

// Arm runs the arm command for group.
func (s *Script) Arm(group string) error { return s.run("arm", s.c.Arm, group) }

// Commit runs the commit command for group.
func (s *Script) Commit(group string) error { return s.run("commit", s.c.Commit, group) }

// Revert runs the revert command for group.
func (s *Script) Revert(group string) error { return s.run("revert", s.c.Revert, group) }

// stderrTail is how much of the end of a command's standard error an error
// quotes.
const stderrTail = 512

func (s *Script) run(verb string, argv []string, group string) error {
	if _, err := slot.Other(group); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Timeout)
	defer cancel()
	args := append(append([]string(nil), argv[1:]...), group)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	stderr := &tail{max: stderrTail}
	cmd.Stderr = stderr
	killGroup(cmd)
	// A process the command left running may hold stderr open: stop
	// waiting for it soon after the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", s.c.Timeout)
	}
	line := strings.Join(cmd.Args, " ")
	if msg := stderr.String(); msg != "" {
		return fmt.Errorf("%s group %s: %s: %w; stderr: %q", verb, group, line, err, msg)
	}
	return fmt.Errorf("%s group %s: %s: %w", verb, group, line, err)
}

// tail is an io.Writer that keeps the last max bytes written to it.
type tail struct {
	b   []byte
	max int
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String returns what was kept, trimmed, with "…" in front if the start was
// dropped.
func (t *tail) String() string {
	s := string(bytes.TrimSpace(t.b))
	if t.cut && s != "" {
		s = "…" + s
	}
	return s
}
