// Command gitfleet-sim simulates a fleet of devices for load tests: N
// devices, each a real MQTT client with its own id running the agent's link
// and update engine over slots in memory, connected to a broker and a
// gitfleet-server. It follows a rollout to its end, sends a storm of
// statuses, and measures the server: ingest rate, time to all confirmed,
// CPU and memory, API latency. See docs/fleet-simulator.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == errHelp {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitfleet-sim: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
