// Command gitfleet-server is the GitOps half of gitfleet: it watches the
// firmware repository, builds signed tags into signed bundles in object
// storage, advertises each channel's release over MQTT, ingests what
// devices report, moves or halts rollouts by itself, and serves the fleet
// status API. With no configuration it runs on embedded defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitfleet-server: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gitfleet-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "server configuration file (default: embedded defaults)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: gitfleet-server [--config server.yaml]
       gitfleet-server mosquitto-acl [--config server.yaml]   print the ACL an external Mosquitto needs
       gitfleet-server add-device [--config server.yaml] ID  add a device account to the embedded broker

Runs the gitfleet server. With no --config: embedded MQTT broker on 127.0.0.1:1883, SQLite and
objects under ./gitfleet-data, API on http://127.0.0.1:8080.

`)
		fs.PrintDefaults()
	}
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	switch sub {
	case "":
		return serve(ctx, cfg, stderr)
	case "mosquitto-acl":
		return printACL(ctx, cfg, stdout)
	case "add-device":
		if fs.NArg() != 1 {
			return fmt.Errorf("add-device: give the device id")
		}
		return addDevice(cfg, fs.Arg(0), stdout)
	}
	return fmt.Errorf("unknown command %q: run gitfleet-server --help", sub)
}
