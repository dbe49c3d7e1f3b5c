//go:build unix

package recipe

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a new process group, and its
// cancellation kill the whole group, so that a timed-out build leaves no
// compiler or emulator behind.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return nil
	}
}

// killGroup kills the process group pgid. The group may already be gone.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
