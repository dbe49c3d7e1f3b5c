package vboard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// The board's directory:
//
//	slots/A.img, slots/B.img  the two slot groups, one rootfs slot each
//	bootenv                   the bootloader environment (boot.File)
//	data/                     the agent's data directory (journal, outbox)
//	etc/root.json             the pinned trust root
//	etc/agent.yaml            the agent's configuration, written at each boot
//	proc/cmdline, proc/boot_id  what the kernel says about this boot
//	bin/gitfleet-agent, bin/reboot, bin/service  the system's commands
//	agent.log                 the agent daemon's log
//	dev/reboot                the pipe the reboot command writes to
//	run/                      emptied at each boot
func (b *Board) path(elem ...string) string {
	return filepath.Join(append([]string{b.cfg.Dir}, elem...)...)
}

// provision creates what the board's flash holds at the factory, once, and
// rewrites the system's commands, which name this run's binaries.
func (b *Board) provision() error {
	for _, d := range []string{"slots", "data", "etc", "proc", "bin", "dev", "run"} {
		if err := os.MkdirAll(b.path(d), 0o755); err != nil {
			return fmt.Errorf("vboard: provision: %w", err)
		}
	}
	root := b.path("etc", "root.json")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if b.cfg.Root == "" {
			return errors.New("vboard: root: set the trust root.json the board pins (its first start)")
		}
		data, err := os.ReadFile(b.cfg.Root)
		if err != nil {
			return fmt.Errorf("vboard: root: %w", err)
		}
		if err := atomicfile.Write(root, data, 0o644); err != nil {
			return fmt.Errorf("vboard: root: %w", err)
		}
	}
	for _, g := range []string{"A", "B"} {
		p := b.path("slots", g+".img")
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := b.flashFactory(p); err != nil {
			return err
		}
	}
	if err := os.Remove(b.path("dev", "reboot")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vboard: reboot pipe: %w", err)
	}
	if err := unix.Mkfifo(b.path("dev", "reboot"), 0o600); err != nil {
		return fmt.Errorf("vboard: reboot pipe: %w", err)
	}
	agent := "#!/bin/sh\n# gitfleet-agent on the virtual board: the real binary with the board's configuration.\n" +
		"if [ $# -eq 0 ]; then exec " + shQuote(b.cfg.Agent) + "; fi\n" +
		"cmd=$1; shift\n" +
		"case $cmd in -*|help) exec " + shQuote(b.cfg.Agent) + " \"$cmd\" \"$@\";; esac\n" +
		"exec " + shQuote(b.cfg.Agent) + " \"$cmd\" --config " + shQuote(b.path("etc", "agent.yaml")) + " \"$@\"\n"
	reboot := "#!/bin/sh\n# reboot on the virtual board: ask the board to restart.\necho reboot > " + shQuote(b.path("dev", "reboot")) + "\n"
	for name, script := range map[string]string{"gitfleet-agent": agent, "reboot": reboot, "service": serviceScript} {
		if err := atomicfile.Write(b.path("bin", name), []byte(script), 0o755); err != nil {
			return fmt.Errorf("vboard: provision: %w", err)
		}
	}
	return nil
}

// serviceScript is the board's init system, as far as the agent's daemon
// goes: `service gitfleet-agent start|stop|status`, as on Debian. The daemon
// logs to agent.log; if it dies of anything but a stop, the supervising
// shell says so on the console with the crash's first line, so a panic of
// the daemon shows where one of a command would. A power cut kills
// everything without a word.
const serviceScript = `#!/bin/sh
# service on the virtual board: start and stop the agent's daemon.
pidfile="$HOME/run/gitfleet-agent.pid"
log="$HOME/agent.log"
running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$1 $2" in
"gitfleet-agent start")
	running && exit 0
	rm -f "$pidfile"
	(
		gitfleet-agent run >>"$log" 2>&1 &
		echo $! >"$pidfile"
		wait $!
		rc=$?
		if [ $rc -ne 0 ]; then
			echo "gitfleet-agent run exited with status $rc"
			tail -n 100 "$log" | grep -E '^(panic: |fatal error: )' | tail -n 1
		fi
	) &
	# Started once its pid is known, so that a stop right after finds it.
	i=0
	while [ ! -s "$pidfile" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	running
	;;
"gitfleet-agent stop")
	running || exit 0
	pid=$(cat "$pidfile")
	kill "$pid"
	# Stopped once it has exited and let go of the agent's data directory.
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		[ $i -ge 200 ] && { echo "gitfleet-agent run did not stop in 10s" >&2; exit 1; }
		sleep 0.05
		i=$((i + 1))
	done
	rm -f "$pidfile"
	;;
"gitfleet-agent status")
	running && echo "gitfleet-agent is running" || { echo "gitfleet-agent is stopped"; exit 3; }
	;;
*)
	echo "usage: service gitfleet-agent start|stop|status" >&2
	exit 2
	;;
esac
`

// flashFactory writes the factory image into a new slot file of SlotSize.
func (b *Board) flashFactory(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vboard: flash %s: %w", path, err)
	}
	size := min(b.cfg.SlotSize, 64<<10)
	err = WriteImage(f, Healthy, b.cfg.FactoryVersion, size)
	if err == nil {
		err = f.Truncate(b.cfg.SlotSize)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vboard: flash %s: %w", path, err)
	}
	return nil
}

// agentConfig is the agent.yaml of an image of kind: the board's files, and
// a health check that fails in an unhealthy image, as an application that
// does not come up would make it fail.
func (b *Board) agentConfig(kind Kind) string {
	health := `["true"]`
	if kind == Unhealthy {
		health = `["sh", "-c", "echo 'application: not responding on :8080' >&2; exit 1"]`
	}
	q := strconv.Quote
	return strings.Join([]string{
		"# Written by the virtual board at each boot: this image's configuration.",
		"device:",
		"  id: " + q(b.cfg.DeviceID),
		"  type: " + q(b.cfg.DeviceType),
		"  fleet: " + q(b.cfg.Fleet),
		"  channel: " + q(b.cfg.Channel),
		"data_dir: " + q(b.path("data")),
		"trust:",
		"  root: " + q(b.path("etc", "root.json")),
		"slots:",
		"  booted: cmdline",
		"  cmdline: " + q(b.path("proc", "cmdline")),
		"  groups:",
		"    A: {rootfs: " + q(b.path("slots", "A.img")) + "}",
		"    B: {rootfs: " + q(b.path("slots", "B.img")) + "}",
		"bootloader:",
		"  type: file",
		"  file: " + q(b.path("bootenv")),
		"  convention: {tries: " + strconv.Itoa(b.cfg.Tries) + "}",
		"system:",
		"  boot_id_file: " + q(b.path("proc", "boot_id")),
		"  reboot_command: [" + q(b.path("bin", "reboot")) + "]",
		"health:",
		"  commands:",
		"    - name: application",
		"      command: " + health,
		"      timeout: 10s",
		b.mqttConfig(),
	}, "\n")
}

// mqttConfig is the agent.yaml's mqtt section, when the board follows a
// server's broker.
func (b *Board) mqttConfig() string {
	if b.cfg.Broker == "" {
		return ""
	}
	q := strconv.Quote
	return strings.Join([]string{
		"mqtt:",
		"  broker: " + q(b.cfg.Broker),
		"  username: " + q(b.cfg.DeviceID),
		"  password_file: " + q(b.cfg.MQTTPasswordFile),
		"  keep_alive: 10s",
		"",
	}, "\n")
}

// shQuote quotes s for sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
