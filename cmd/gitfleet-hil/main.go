// Command gitfleet-hil runs hardware-in-the-loop tests of gitfleet (run)
// and simulates a board for them (vboard).
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitfleet-hil: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
