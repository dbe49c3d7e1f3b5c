package vboard

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// A system is the operating system of one boot: an init script and
// everything it starts, in a session of their own on a terminal of their
// own, whose output the board relays to the console.
type system struct {
	cmd   *exec.Cmd
	tty   *os.File      // the terminal's master side
	done  chan struct{} // closed when init has exited
	relay chan struct{} // closed when the relay has stopped
}

// initScript is the system's init: finish the update in progress, as an
// init script or a systemd unit on a real board does, then a login shell.
const initScript = `#!/bin/sh
if [ -n "$VBOARD_DAEMON" ]; then
	echo "vboard: starting gitfleet-agent run"
	service gitfleet-agent start
else
	echo "vboard: starting gitfleet-agent resume"
	gitfleet-agent resume
	echo "vboard: gitfleet-agent resume exited with status $?"
fi
echo
echo "gitfleet vboard $VBOARD_ID ttyS0"
echo
echo "vboard login: root (automatic login)"
export PS1="root@$VBOARD_ID:~# "
exec "$VBOARD_SHELL" -i
`

// startSystem boots the image's operating system: it writes what the
// kernel tells the system (the command line, a new boot id) and the
// image's agent configuration, empties run/, and starts init.
func (b *Board) startSystem(l load) (*system, error) {
	id := make([]byte, 16)
	rand.Read(id)
	if err := os.RemoveAll(b.path("run")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.path("run"), 0o755); err != nil {
		return nil, err
	}
	for name, data := range map[string]string{
		filepath.Join("proc", "cmdline"):   l.cmdline + "\n",
		filepath.Join("proc", "boot_id"):   hex.EncodeToString(id) + "\n",
		filepath.Join("etc", "agent.yaml"): b.agentConfig(l.image.Kind),
		filepath.Join("run", "init"):       initScript,
	} {
		if err := atomicfile.Write(b.path(name), []byte(data), 0o755); err != nil {
			return nil, err
		}
	}
	master, slavePath, err := openPTY()
	if err != nil {
		return nil, err
	}
	// A new terminal is cooked, with echo, as a serial getty's is.
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("open %s: %w", slavePath, err)
	}
	defer slave.Close()
	cmd := exec.Command(b.cfg.Shell, b.path("run", "init"))
	cmd.Dir = b.cfg.Dir
	cmd.Env = []string{
		"PATH=" + b.path("bin") + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + b.cfg.Dir, "TERM=vt100", "LANG=C",
		"VBOARD_ID=" + b.cfg.DeviceID, "VBOARD_SHELL=" + b.cfg.Shell,
	}
	if b.cfg.Broker != "" {
		cmd.Env = append(cmd.Env, "VBOARD_DAEMON=1")
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	s := &system{cmd: cmd, tty: master, done: make(chan struct{}), relay: make(chan struct{})}
	go func() {
		defer close(s.done)
		cmd.Wait()
	}()
	go func() {
		defer close(s.relay)
		b.relay(master)
	}()
	b.osMu.Lock()
	b.osIn = master
	b.osMu.Unlock()
	return s, nil
}

// relay copies the system's terminal output to the console until the
// terminal is closed.
func (b *Board) relay(tty io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := tty.Read(buf)
		if n > 0 {
			b.emit(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			return
		}
	}
}

func (s *system) sid() int { return s.cmd.Process.Pid }

// terminate asks every process to stop, as a reboot does.
func (s *system) terminate() {
	signalSession(s.sid(), syscall.SIGTERM)
}

// busy reports whether processes other than init still run.
func (s *system) busy() bool {
	for _, pid := range sessionProcs(s.sid()) {
		if pid != s.sid() {
			return true
		}
	}
	return false
}

// kill is the power cut: SIGKILL to every process of the session, then
// the terminal is closed and the goroutines waited for.
func (s *system) kill() {
	deadline := time.Now().Add(5 * time.Second)
	for signalSession(s.sid(), syscall.SIGKILL) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	<-s.done
	s.tty.Close()
	<-s.relay
}
