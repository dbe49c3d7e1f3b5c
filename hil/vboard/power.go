package vboard

import (
	"context"
	"fmt"
	"time"
)

// The board's power states. The loop goroutine alone changes them.
const (
	stateOff      = "off"
	stateBooting  = "booting"  // the kernel is coming up (KernelDelay)
	stateRunning  = "running"  // the operating system runs
	stateStopping = "stopping" // a reboot: processes were asked to stop
	stateHung     = "hung"     // a kernel panic: the watchdog will reset
	stateReset    = "resetting"
)

// loop owns the power state. Everything that changes it arrives here: the
// control socket's requests, the system's reboot requests, the timers of
// the kernel, the watchdog and a reboot's grace period, and the end of the
// system's init.
func (b *Board) loop(ctx context.Context) error {
	p := &supply{b: b, state: stateOff}
	defer p.off()
	if b.cfg.PowerOn {
		p.on()
	}
	for {
		var osDone <-chan struct{}
		if p.state == stateRunning {
			osDone = p.sys.done
		}
		var timerC <-chan time.Time
		if p.timer != nil {
			timerC = p.timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-b.requests:
			r.reply <- p.command(r.cmd)
		case <-b.reboots:
			if p.state == stateRunning {
				p.stopping(time.Now().Add(rebootGrace))
			}
		case <-timerC:
			next := p.next
			p.timer, p.next = nil, nil
			next()
		case <-osDone:
			// init ended while the system ran: Linux panics, and the
			// watchdog resets the board.
			code := p.sys.cmd.ProcessState.ExitCode()
			p.killSystem()
			b.print("[%12.6f] Kernel panic - not syncing: Attempted to kill init! exitcode=0x%08x", p.uptime(), code)
			p.hang()
		}
	}
}

// rebootGrace is how long a reboot waits for the system's processes to
// exit after SIGTERM, as systemd does (in less time), before the reset.
const rebootGrace = 1500 * time.Millisecond

// supply is the power state the loop owns.
type supply struct {
	b     *Board
	state string
	boot  time.Time // power-on time, for the kernel's timestamps
	sys   *system   // the running system, if any
	timer *time.Timer
	next  func() // what to do when timer fires
}

func (p *supply) after(d time.Duration, next func()) {
	p.stopTimer()
	p.timer, p.next = time.NewTimer(d), next
}

func (p *supply) stopTimer() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer, p.next = nil, nil
	}
}

func (p *supply) uptime() float64 { return time.Since(p.boot).Seconds() }

// command performs a control socket command and returns the reply.
func (p *supply) command(cmd string) string {
	switch cmd {
	case "on":
		if p.state == stateOff {
			p.on()
		}
	case "off":
		p.off()
	case "reset":
		p.off()
		p.on()
	case "state":
	default:
		return fmt.Sprintf("error unknown command %q: want on, off, reset or state", cmd)
	}
	if p.state == stateOff {
		return "ok off"
	}
	return "ok on"
}

// off cuts the power: every process of the system is killed at once
// (SIGKILL), whatever it was writing.
func (p *supply) off() {
	p.stopTimer()
	p.killSystem()
	if p.state != stateOff {
		p.b.log.Info("power off")
	}
	p.state = stateOff
}

func (p *supply) killSystem() {
	if p.sys != nil {
		p.sys.kill()
		p.sys = nil
	}
	p.b.osMu.Lock()
	p.b.osIn = nil
	p.b.osMu.Unlock()
}

// on powers the board on: the bootloader runs at once.
func (p *supply) on() {
	p.b.log.Info("power on")
	p.boot = time.Now()
	p.state = stateBooting
	load, err := p.b.bootloader()
	switch {
	case err != nil:
		// The bootloader cannot boot the slot: bootcmd resets the board,
		// which during a trial counts one more boot towards the fallback.
		p.b.print("%v", err)
		p.b.print("resetting ...")
		p.state = stateReset
		p.after(200*time.Millisecond, p.reset)
		return
	}
	p.b.kernelStart(load)
	if load.image.Kind == Broken {
		p.after(p.b.cfg.KernelDelay, func() {
			p.b.print("[%12.6f] VFS: Cannot open root device \"%s\" or unknown-block(179,%d): error -6", p.uptime(), load.root, load.part)
			p.b.print("[%12.6f] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(179,%d)", p.uptime(), load.part)
			p.hang()
		})
		return
	}
	p.after(p.b.cfg.KernelDelay, func() {
		sys, err := p.b.startSystem(load)
		if err != nil {
			p.b.print("[%12.6f] Kernel panic - not syncing: No working init found: %v", p.uptime(), err)
			p.hang()
			return
		}
		p.sys, p.state = sys, stateRunning
	})
}

// hang leaves the board hung until the watchdog resets it.
func (p *supply) hang() {
	p.state = stateHung
	p.after(p.b.cfg.Watchdog, p.reset)
}

func (p *supply) reset() {
	p.off()
	p.on()
}

// stopping is a reboot: a moment for the reboot command to return, as
// systemctl reboot does, then SIGTERM to every process, then the reset once
// all are gone but init or the grace period is over. An interactive shell
// as init ignores SIGTERM; a script as init ends with it, so no login
// prompt shows on the way down.
func (p *supply) stopping(deadline time.Time) {
	if p.state != stateStopping {
		p.state = stateStopping
		p.after(rebootDelay, func() {
			p.sys.terminate()
			p.stopping(deadline)
		})
		return
	}
	if time.Now().Before(deadline) && p.sys.busy() {
		p.after(20*time.Millisecond, func() { p.stopping(deadline) })
		return
	}
	p.killSystem()
	p.b.print("[%12.6f] reboot: Restarting system", p.uptime())
	p.reset()
}

// rebootDelay is how long a reboot request takes to begin.
const rebootDelay = 200 * time.Millisecond
