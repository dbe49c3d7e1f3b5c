//go:build !unix

package boot

import "os/exec"

// killGroup leaves cmd as it is: a cancel kills the command alone.
func killGroup(*exec.Cmd) {}
