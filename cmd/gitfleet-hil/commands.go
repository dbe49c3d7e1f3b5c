package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gitfleet/gitfleet/hil"
	"github.com/gitfleet/gitfleet/hil/vboard"
)

// A command is one subcommand of gitfleet-hil.
type command struct {
	name, args, short, long string
	run                     func(ctx context.Context, c command, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{
		name: "run", args: "--rig rig.yaml --plan plan.yaml [--junit report.xml] [--logs DIR]",
		short: "Run a plan's scenarios on every board of a rig; write a JUnit report and console logs",
		long: `Run the plan's scenarios on every board of the rig, the boards in parallel, each board's
scenarios in order. Each scenario checks the board's console, then waits until the fleet status API
of the rig's server reports the board as its console does. With server.embedded the runner starts
gitfleet-server itself, for the virtual boards it starts, and stops it at the end. Each run of a
scenario gets a console log (LOGS/BOARD/NNN-NAME.log) and a JUnit test case. Exits non-zero if any
scenario failed. hil/README.md describes both files.`,
		run: runPlan,
	},
	{
		name: "vboard", args: "--dir DIR --agent gitfleet-agent --device-id ID --device-type TYPE --root root.json [--console LINK] [--control SOCKET]",
		short: "Simulate a board: a pseudo-terminal console, a control socket for power, U-Boot boot counting, the real agent",
		long: `Start a virtual board and serve it until SIGINT or SIGTERM. Its console is a pseudo-terminal
(printed, and linked at --console); its power is switched through the control socket (--control,
lines "on", "off", "reset", "state"). At power-on it acts as U-Boot with boot counting on DIR/bootenv,
then boots the chosen slot's image: a healthy image runs gitfleet-agent, then a shell; a broken one
panics until the watchdog resets the board. With --broker the agent's daemon runs (service
gitfleet-agent start|stop at the shell) and reports to that server; without, 'gitfleet-agent resume'
runs at boot and reports wait in the outbox. The board starts powered off.`,
		run: runVBoard,
	},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "gitfleet-hil: hardware-in-the-loop tests of gitfleet on real and virtual boards\n\nUsage: gitfleet-hil COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\n'gitfleet-hil COMMAND --help' says more.\n")
}

func run(ctx context.Context, args []string) error {
	return dispatch(ctx, args, os.Stdout, os.Stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, c, args[1:], stdout, stderr)
		}
	}
	return fmt.Errorf("unknown command %q: run gitfleet-hil --help", args[0])
}

// parse parses a command's flags; done is true after --help.
func parse(fs *flag.FlagSet, c command, args []string, stderr io.Writer) (done bool, err error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gitfleet-hil %s %s\n\n%s\n\n", c.name, c.args, c.long)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%s: unexpected argument %q", c.name, fs.Arg(0))
	}
	return false, nil
}

func runPlan(ctx context.Context, c command, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gitfleet-hil run", flag.ContinueOnError)
	rigPath := fs.String("rig", "", "rig file (required)")
	planPath := fs.String("plan", "", "plan file (required)")
	junitPath := fs.String("junit", "report.xml", "JUnit XML report to write")
	logs := fs.String("logs", "hil-logs", "directory for the console logs")
	work := fs.String("work", "", "directory for bundles, keys and virtual boards (default: a temporary one, removed)")
	agent := fs.String("agent", "", "gitfleet-agent for virtual boards (default: beside gitfleet-hil, else on $PATH)")
	verbose := fs.Bool("v", false, "log each scenario's result and the virtual boards' power")
	if done, err := parse(fs, c, args, stderr); done || err != nil {
		return err
	}
	if *rigPath == "" || *planPath == "" {
		return errors.New("run: --rig and --plan are required")
	}
	rig, err := hil.LoadRig(*rigPath)
	if err != nil {
		return err
	}
	plan, err := hil.LoadPlan(*planPath)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	report, err := hil.Run(ctx, rig, plan, hil.Options{LogDir: *logs, WorkDir: *work, Agent: *agent, Log: log})
	if err != nil {
		return err
	}
	f, err := os.Create(*junitPath)
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	if err := report.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				fmt.Fprintf(stdout, "FAIL %s: %s: %s\n", s.Name, c.Name, c.Failure.Message)
			}
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", report.Tests-report.Failures-report.Errors, report.Failures+report.Errors)
	if ctx.Err() != nil {
		return errors.New("run: interrupted")
	}
	if n := report.Failures + report.Errors; n > 0 {
		return fmt.Errorf("%d of %d scenario runs failed: see %s and the logs in %s", n, report.Tests, *junitPath, *logs)
	}
	return nil
}

func runVBoard(ctx context.Context, cmd command, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gitfleet-hil vboard", flag.ContinueOnError)
	var c vboard.Config
	fs.StringVar(&c.Dir, "dir", "", "the board's state directory: slots, environment, agent data (required)")
	fs.StringVar(&c.Agent, "agent", "", "gitfleet-agent binary that healthy images run (required)")
	fs.StringVar(&c.DeviceID, "device-id", "", "device id (required)")
	fs.StringVar(&c.DeviceType, "device-type", "gitfleet-vboard", "device type")
	fs.StringVar(&c.Fleet, "fleet", "hil", "fleet")
	fs.StringVar(&c.Channel, "channel", "hil", "channel the board follows")
	fs.StringVar(&c.Broker, "broker", "", "MQTT broker of a gitfleet server (tcp://HOST:PORT): the board runs the agent daemon and follows its channel")
	fs.StringVar(&c.MQTTPasswordFile, "mqtt-password-file", "", "file with the password of the board's broker account (its device id)")
	fs.StringVar(&c.Root, "root", "", "trust root.json the board pins (required at its first start)")
	fs.StringVar(&c.ConsoleLink, "console", "", "make a symbolic link to the console's pseudo-terminal here")
	fs.StringVar(&c.Control, "control", "", "control socket (default DIR/control.sock)")
	fs.Int64Var(&c.SlotSize, "slot-size", 4<<20, "size of each slot in bytes")
	fs.StringVar(&c.FactoryVersion, "factory-version", "1.0.0", "version of the image both slots hold at the first start")
	fs.IntVar(&c.Tries, "tries", 1, "boots a trial of a new slot gets (bootlimit)")
	fs.DurationVar(&c.Watchdog, "watchdog", 2*time.Second, "how long a hung kernel runs before the watchdog resets the board")
	fs.DurationVar(&c.KernelDelay, "kernel-delay", 300*time.Millisecond, "how long the kernel takes to boot")
	fs.BoolVar(&c.PowerOn, "power-on", false, "power the board on at start")
	if done, err := parse(fs, cmd, args, stderr); done || err != nil {
		return err
	}
	if c.Agent == "" {
		if self, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "gitfleet-agent"); fileExists(p) {
				c.Agent = p
			}
		}
	}
	c.Log = slog.New(slog.NewTextHandler(stderr, nil))
	b, err := vboard.New(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "console: %s\ncontrol: %s\n", b.ConsolePath(), b.ControlPath())
	return b.Run(ctx)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
