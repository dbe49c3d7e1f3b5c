package main

import (
	"os"
	"runtime/debug"
	"syscall"
)

// tuneGC trades the simulator's memory for CPU, unless GOGC or GOMEMLIMIT
// is set: the simulator shares the machine's cores with the broker and the
// server it measures, and with the default GOGC of 100 a fifth of its CPU
// went to the garbage collector during a 10,000-device rollout (assists
// and mark workers over a heap of about 2 GiB that hardly changes). The
// heap may grow to five times what is live, but no further than half the
// machine's memory, where the collector works harder instead.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return
	}
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(int64(si.Totalram) * int64(si.Unit) / 2)
}
