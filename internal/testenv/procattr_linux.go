package testenv

import "syscall"

// dieWithParent has the kernel kill a process that a test starts when the test binary dies, so that a
// test that panics or times out, and so runs no cleanup, leaves nothing running. (Linux sends the
// signal when the thread that started the process ends; the Go runtime ends a thread only when a
// goroutine locked to it returns, which testenv's callers have no reason to do.)
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
