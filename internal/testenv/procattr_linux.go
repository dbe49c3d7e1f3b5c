package testenv

import "syscall"

// dieWithParent has the kernel kill a process that a test starts when the test binary dies, so that a
// test that panics or times out, and so runs no cleanup, leaves nothing running. Linux sends the
// signal when the thread that started the process ends, which in Go is when the test binary does: the
// runtime ends a thread only when a goroutine locked to it returns. Linux also forgets the signal when
// the process changes its user, which Mosquitto started as root does unless told "user root".
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
