package vboard

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// sessionProcs returns the live processes of session sid: everything the
// board's operating system started, whatever process group it put itself
// in (the shell's jobs, the agent's health checks). Zombies are left out:
// they are dead, and their parent reaps them.
func sessionProcs(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: fields are
		// counted after its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		// f[0] is the state, f[3] the session.
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if s, err := strconv.Atoi(f[3]); err == nil && s == sid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signalSession sends sig to every live process of session sid except
// those in keep, and returns how many it signalled.
func signalSession(sid int, sig syscall.Signal, keep ...int) int {
	n := 0
	for _, pid := range sessionProcs(sid) {
		if slices.Contains(keep, pid) {
			continue
		}
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}
