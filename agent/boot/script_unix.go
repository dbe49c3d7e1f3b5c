//go:build unix

package boot

import (
	"os/exec"
	"syscall"
)

// killGroup starts cmd in a process group of its own and has a cancel kill
// the whole group, so that a timed-out script does not leave a half-done
// bootloader change running in a child.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
