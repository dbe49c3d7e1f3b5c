//go:build !linux

package testenv

import "syscall"

// dieWithParent is Linux's alone: elsewhere, a test that panics or times out leaves its processes.
func dieWithParent() *syscall.SysProcAttr { return nil }
