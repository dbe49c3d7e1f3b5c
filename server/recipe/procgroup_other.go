//go:build !unix

package recipe

import "os/exec"

// ownGroup has no process groups to use here: cancellation kills the
// command alone.
func ownGroup(cmd *exec.Cmd) {}

func killGroup(pgid int) {}
