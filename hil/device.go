package hil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/hil/console"
)

// A switcher is a board's power driver (package power).
type switcher interface {
	On(ctx context.Context) error
	Off(ctx context.Context) error
}

// A reporter tells what a device reports about itself on its console: its
// agent's status command. The fleet status API must then say the same
// (fleet.agree).
type reporter interface {
	Status(ctx context.Context, d *device) (DeviceStatus, error)
}

// DeviceStatus is what a device reports: `gitfleet-agent status`.
type DeviceStatus struct {
	Device    string          `json:"device"`
	State     update.State    `json:"state"`
	Installed update.Release  `json:"installed"`
	Last      *update.Outcome `json:"last_result,omitempty"`
	Confirmed bool            `json:"confirmed"`
}

// A device is one board during a run: its console, its power and what the
// runner knows of it.
type device struct {
	b       Board
	con     *console.Console
	power   switcher
	reports reporter
	// slot is the group the last boot started, from the kernel command
	// line on the console; "" while unknown.
	slot string
	// panics are the Go panics (of the agent) the console showed since
	// the scenario started: always a failure, even if the device recovers.
	panics []string
}

// errRebooted: the board restarted while a command ran.
var errRebooted = errors.New("the board restarted")

var (
	slotRE  = regexp.MustCompile(`gitfleet\.slot=([AB])\b`)
	panicRE = regexp.MustCompile(`Kernel panic`)
	// goPanicRE matches the first line of a Go program's crash.
	goPanicRE = regexp.MustCompile(`^(panic: |fatal error: )`)
)

// saw records what the console lines say about the device: the slot a boot
// started, and crashes of the agent.
func (d *device) saw(lines []console.Line) {
	for _, l := range lines {
		if g := slotRE.FindStringSubmatch(l.Text); g != nil {
			d.slot = g[1]
		}
		if goPanicRE.MatchString(l.Text) {
			d.panics = append(d.panics, l.Text)
		}
	}
}

// powerCycle cuts the power, waits the rig's off time, and powers on.
func (d *device) powerCycle(ctx context.Context) error {
	if err := d.power.Off(ctx); err != nil {
		return err
	}
	if err := sleep(ctx, d.b.Power.OffTime); err != nil {
		return err
	}
	d.con.Discard()
	return d.power.On(ctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A bootLog is what the console showed from a power-on to the prompt.
type bootLog struct {
	lines []console.Line
	boots int // bootloader banners seen
}

func (l bootLog) has(re *regexp.Regexp) bool {
	for _, ln := range l.lines {
		if re.MatchString(ln.Text) {
			return true
		}
	}
	return false
}

// boot waits until the board has started at least boots times (banners,
// counting one already seen) and shows its prompt, and records the slot of
// the last boot. A prompt before that many boots is passed over: a board
// may show one as it goes down for a reboot.
func (d *device) boot(ctx context.Context, boots, seen int) (bootLog, error) {
	l := bootLog{boots: seen}
	for {
		m, err := d.con.Expect(ctx, d.b.BootTimeout, d.b.Banner, d.b.Prompt)
		l.lines = append(append(l.lines, m.Before...), m.Line)
		if err != nil {
			return l, fmt.Errorf("waiting for boot %d of %d: %w", l.boots+1, boots, err)
		}
		d.saw(append(m.Before, m.Line))
		if m.Index == 0 {
			l.boots++
			continue
		}
		if l.boots >= boots {
			return l, nil
		}
	}
}

// run types cmdline at the shell prompt and waits for it to end. It
// returns the command's output lines and exit status, or errRebooted if the
// board restarted first (its banner came).
func (d *device) run(ctx context.Context, cmdline string, timeout time.Duration) ([]string, int, error) {
	nonce := make([]byte, 4)
	rand.Read(nonce)
	marker := "@@hil-" + hex.EncodeToString(nonce)
	d.con.Discard()
	// The shell prints the markers, so the same command works on a real
	// board. They are matched at the end of a line: the shell's prompt may
	// come before them on the same line (typed input is echoed at once,
	// the prompt when the shell gets to it), and the echo of the typed
	// line holds them too, but not at its end.
	if err := d.con.Send(fmt.Sprintf(`echo "%s begin"; %s; echo "%s rc=$?"`, marker, cmdline, marker)); err != nil {
		return nil, 0, err
	}
	end := regexp.MustCompile(regexp.QuoteMeta(marker) + ` rc=(\d+)$`)
	m, err := d.con.Expect(ctx, timeout, end, d.b.Banner)
	d.saw(m.Before)
	var out []string
	for _, l := range m.Before {
		switch {
		case strings.HasSuffix(l.Text, marker+" begin"):
			out = out[:0] // what came before is not the command's
		case !strings.Contains(l.Text, marker):
			out = append(out, l.Text)
		}
	}
	switch {
	case err != nil:
		return out, 0, fmt.Errorf("%s: %w", cmdline, err)
	case m.Index == 1:
		return out, 0, errRebooted
	}
	rc, _ := strconv.Atoi(m.Groups[1])
	if rc == 128+15 || rc == 128+9 {
		// SIGTERM or SIGKILL: a reboot that was on its way when the
		// command was typed (a shell shows its prompt while the system
		// goes down) ends it. If the board restarts, that is what it was.
		if m, err := d.con.Expect(ctx, d.b.BootTimeout, d.b.Banner); err == nil {
			d.saw(m.Before)
			return out, rc, errRebooted
		}
	}
	return out, rc, nil
}

// stopDaemon stops the agent's daemon at the board's shell, which an
// install from the console needs: the daemon holds the agent's data
// directory.
func (d *device) stopDaemon(ctx context.Context) error {
	return d.daemon(ctx, d.b.Daemon.Stop)
}

// startDaemon starts the agent's daemon again, after an install that did
// not end in a reboot (whose boot starts it).
func (d *device) startDaemon(ctx context.Context) error {
	return d.daemon(ctx, d.b.Daemon.Start)
}

func (d *device) daemon(ctx context.Context, cmdline string) error {
	out, rc, err := d.run(ctx, cmdline, d.b.CommandTimeout)
	switch {
	case err != nil:
		return err
	case rc != 0:
		return fmt.Errorf("%s exited %d: %s", cmdline, rc, tail(out, 3))
	}
	return nil
}

// install runs an install command at the shell with the agent's daemon
// stopped, and starts the daemon again unless the board restarts or is
// about to (the command succeeded).
func (d *device) install(ctx context.Context, cmdline string) ([]string, int, error) {
	if err := d.stopDaemon(ctx); err != nil {
		return nil, 0, err
	}
	out, rc, err := d.run(ctx, cmdline, d.b.InstallTimeout)
	if errors.Is(err, errRebooted) || err == nil && rc == 0 {
		return out, rc, err
	}
	if serr := d.startDaemon(ctx); serr != nil && err == nil {
		err = serr
	}
	return out, rc, err
}

// consoleReports reads the device's status with `gitfleet-agent status`.
type consoleReports struct{}

func (consoleReports) Status(ctx context.Context, d *device) (DeviceStatus, error) {
	out, rc, err := d.run(ctx, "gitfleet-agent status", d.b.CommandTimeout)
	if err != nil {
		return DeviceStatus{}, err
	}
	if rc != 0 {
		return DeviceStatus{}, fmt.Errorf("gitfleet-agent status exited %d: %s", rc, tail(out, 3))
	}
	// The JSON is the lines from the first "{" to the last "}".
	first, last := -1, -1
	for i, l := range out {
		if strings.HasPrefix(l, "{") && first < 0 {
			first = i
		}
		if strings.HasPrefix(l, "}") {
			last = i
		}
	}
	if first < 0 || last < first {
		return DeviceStatus{}, fmt.Errorf("gitfleet-agent status printed no JSON: %s", tail(out, 3))
	}
	var s DeviceStatus
	if err := json.Unmarshal([]byte(strings.Join(out[first:last+1], "\n")), &s); err != nil {
		return DeviceStatus{}, fmt.Errorf("gitfleet-agent status: %w", err)
	}
	return s, nil
}

// settle returns the device's status once no update is in progress. It
// follows the reboots that finishing an update takes, and waits for an
// agent still at work (health checks, a daemon's retry); when nothing
// happens (no reboot, no change of state) for the settle timeout it
// power-cycles the board, as a watchdog or an operator would, so that the
// agent resumes, at most maxCycles times. Boards and the agent's step
// counter give up well before that.
func (d *device) settle(ctx context.Context) (DeviceStatus, error) {
	const maxCycles = 4
	cycles := 0
	deadline := time.Now().Add(d.b.SettleTimeout)
	var state update.State
	for {
		s, err := d.reports.Status(ctx, d)
		if err == nil && s.State != state {
			state = s.State
			deadline = time.Now().Add(d.b.SettleTimeout)
		}
		switch {
		case errors.Is(err, errRebooted):
			if _, err := d.boot(ctx, 1, 1); err != nil {
				return s, err
			}
			deadline = time.Now().Add(d.b.SettleTimeout)
			continue
		case err != nil:
			return s, err
		case s.State == update.Idle:
			return s, nil
		case time.Now().After(deadline):
			if cycles == maxCycles {
				return s, fmt.Errorf("the update stays in state %s after %d power cycles", s.State, cycles)
			}
			cycles++
			if err := d.powerCycle(ctx); err != nil {
				return s, err
			}
			if _, err := d.boot(ctx, 1, 0); err != nil {
				return s, err
			}
			deadline = time.Now().Add(d.b.SettleTimeout)
			continue
		}
		// Look again in a second, unless the board restarts meanwhile.
		m, err := d.con.Expect(ctx, time.Second, d.b.Banner)
		d.saw(m.Before)
		if err == nil {
			if _, err := d.boot(ctx, 1, 1); err != nil {
				return s, err
			}
			deadline = time.Now().Add(d.b.SettleTimeout)
		} else if ctx.Err() != nil {
			return s, ctx.Err()
		}
	}
}

// tail returns the last n lines, joined for an error message.
func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
