// Package power switches a board's power: a shell command (uhubctl, a PDU's
// CLI), a relay board driven by bytes on a serial port, a serial port's
// modem lines (DTR or RTS, on hardware only), or the virtual board's control
// socket. Each driver has On and Off; cutting the power is Off.
package power

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"go.bug.st/serial"

	"github.com/gitfleet/gitfleet/hil/console"
)

// Command runs shell commands (by /bin/sh -c) to switch the power, such as
// "uhubctl -l 1-1 -p 2 -a off" or a PDU's command line tool.
type Command struct {
	OnCommand, OffCommand string
	// Timeout bounds each command; default 30s.
	Timeout time.Duration
}

// On runs the on command.
func (c *Command) On(ctx context.Context) error { return c.run(ctx, "on", c.OnCommand) }

// Off runs the off command.
func (c *Command) Off(ctx context.Context) error { return c.run(ctx, "off", c.OffCommand) }

func (c *Command) run(ctx context.Context, what, script string) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("power %s: %s: %w: %s", what, script, err, lastLine(out))
	}
	return nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Relay writes bytes to a serial port to switch a relay board's channel,
// as the common USB relay modules (LCUS-1: A0 01 01 A2 on, A0 01 00 A1 off)
// and relay boards with a text protocol expect. The port is opened for each
// switch.
type Relay struct {
	Port              console.Config
	OnBytes, OffBytes []byte
}

// On writes the on bytes.
func (r *Relay) On(ctx context.Context) error { return r.send("on", r.OnBytes) }

// Off writes the off bytes.
func (r *Relay) Off(ctx context.Context) error { return r.send("off", r.OffBytes) }

func (r *Relay) send(what string, b []byte) error {
	mode, err := r.Port.Mode()
	if err != nil {
		return fmt.Errorf("power %s: relay %s: %w", what, r.Port.Port, err)
	}
	p, err := serial.Open(r.Port.Port, mode)
	if err != nil {
		return fmt.Errorf("power %s: relay %s: %w", what, r.Port.Port, err)
	}
	defer p.Close()
	if _, err := p.Write(b); err != nil {
		return fmt.Errorf("power %s: relay %s: %w", what, r.Port.Port, err)
	}
	if err := p.Drain(); err != nil {
		return fmt.Errorf("power %s: relay %s: drain: %w", what, r.Port.Port, err)
	}
	return nil
}

// Modem switches the power with a serial port's DTR or RTS line, wired to a
// transistor or a relay module's input. The port stays open while the
// driver is used: closing it drops the lines on most adapters. Modem lines
// are hardware only: their ioctls fail on a pseudo-terminal.
type Modem struct {
	port serial.Port
	name string
	line string
	// activeLow: the power is on while the line is deasserted.
	activeLow bool
}

// OpenModem opens port to drive line ("dtr" or "rts"); with activeLow the
// power is on while the line is low.
func OpenModem(port, line string, activeLow bool) (*Modem, error) {
	if line != "dtr" && line != "rts" {
		return nil, fmt.Errorf("power: modem line %q: want dtr or rts", line)
	}
	p, err := serial.Open(port, &serial.Mode{BaudRate: 9600})
	if err != nil {
		return nil, fmt.Errorf("power: modem %s: %w", port, err)
	}
	return &Modem{port: p, name: port, line: line, activeLow: activeLow}, nil
}

// On asserts the line (deasserts it when active low).
func (m *Modem) On(ctx context.Context) error { return m.set("on", !m.activeLow) }

// Off deasserts the line (asserts it when active low).
func (m *Modem) Off(ctx context.Context) error { return m.set("off", m.activeLow) }

func (m *Modem) set(what string, level bool) error {
	var err error
	if m.line == "dtr" {
		err = m.port.SetDTR(level)
	} else {
		err = m.port.SetRTS(level)
	}
	if err != nil {
		return fmt.Errorf("power %s: %s of %s: %w (modem lines need a real serial adapter; a pseudo-terminal has none)", what, strings.ToUpper(m.line), m.name, err)
	}
	return nil
}

// Close closes the port.
func (m *Modem) Close() error { return m.port.Close() }

// VBoard switches a virtual board through its control socket.
type VBoard struct {
	Socket string
}

// On powers the board on; it boots at once.
func (v *VBoard) On(ctx context.Context) error { return v.Do(ctx, "on") }

// Off cuts the board's power: its processes are killed at once.
func (v *VBoard) Off(ctx context.Context) error { return v.Do(ctx, "off") }

// Do sends one control command (on, off, reset or state) and returns an
// error unless the board answers ok.
func (v *VBoard) Do(ctx context.Context, cmd string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", v.Socket)
	if err != nil {
		return fmt.Errorf("power %s: vboard: %w", cmd, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := fmt.Fprintln(c, cmd); err != nil {
		return fmt.Errorf("power %s: vboard: %w", cmd, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("power %s: vboard: %w", cmd, err)
	}
	reply = strings.TrimSpace(reply)
	if !strings.HasPrefix(reply, "ok") {
		return fmt.Errorf("power %s: vboard: %s", cmd, reply)
	}
	return nil
}
