package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitfleet/gitfleet/agent/outbox"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/internal/progress"
)

// The agent's commands use the standard flag package rather than a CLI
// framework: cobra's text/template use keeps the linker from dropping
// unused methods, which cost the agent binary megabytes.

// A command is one subcommand of gitfleet-agent.
type command struct {
	name, args, short, long string
	flags                   func(fs *flag.FlagSet)
	run                     func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error
}

var rollbackReason string

var commands = []command{
	{
		name: "run", short: "Run the agent daemon: follow the channel over MQTT, install, confirm, report",
		long: `Run the daemon: resume any update in progress (after a reboot: check which slot booted, run the
health checks, commit or roll back), follow the channel and desired state the server signs, install
what they offer, and report every step through the on-disk outbox. Stops cleanly on SIGTERM.`,
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			return runDaemon(ctx, cfg, stderr)
		},
	},
	{
		name: "install", args: "BUNDLE|URL",
		short: "Install a bundle from a file (USB) or URL into the inactive slot and reboot into it",
		long: `Install a bundle as an update from the server would be: verified against the pinned root
(signature, device type, release counter), streamed into the inactive slot chunk by chunk, read back,
then the bootloader is armed to try it once and the device reboots. After the reboot, 'gitfleet-agent
run' (or 'commit'/'rollback' with manual health checks) finishes the update.`,
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			if len(args) != 1 {
				return errors.New("install: give one bundle file or URL")
			}
			d, err := openWithOutbox(cfg, stderr)
			if err != nil {
				return err
			}
			defer d.Close()
			d.engine.OnProgress(progress.New(stderr, "install").Update)
			return report(stdout, d.engine, d.engine.Install(ctx, args[0]))
		},
	},
	{
		name: "resume", short: "Finish the update in progress, if any, without the server (e.g. from an init script)",
		long: `Resume whatever the journal says is in progress, as 'run' does at start, then exit: after a reboot
it checks which slot booted, runs the health checks, and commits or rolls back. Reports wait in the
outbox for 'run'.`,
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			d, err := openWithOutbox(cfg, stderr)
			if err != nil {
				return err
			}
			defer d.Close()
			return report(stdout, d.engine, d.engine.Resume(ctx))
		},
	},
	{
		name: "commit", short: "Confirm the new release that waits in the testing state",
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			return confirm(ctx, cfg, stdout, stderr, true, "")
		},
	},
	{
		name: "rollback", short: "Reject the new release that waits in the testing state and reboot into the old one",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&rollbackReason, "reason", "by operator", "why, for the report")
		},
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			return confirm(ctx, cfg, stdout, stderr, false, rollbackReason)
		},
	},
	{
		name: "status", short: "Print the agent's state as JSON: slots, releases, update in progress, last result",
		run: func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
			return printStatus(stdout, cfg)
		},
	},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "gitfleet-agent: the gitfleet update agent, A/B updates that survive a power cut at any instant\n\nUsage: gitfleet-agent COMMAND [--config FILE] [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nEvery command takes --config FILE (default %s). 'gitfleet-agent COMMAND --help' says more.\n", DefaultConfigPath)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("gitfleet-agent "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath := fs.String("config", DefaultConfigPath, "agent configuration file")
		if c.flags != nil {
			c.flags(fs)
		}
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: gitfleet-agent %s [flags] %s\n\n%s\n\n", c.name, c.args, firstNonEmpty(c.long, c.short))
			fs.PrintDefaults()
		}
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		cfg, err := LoadConfig(*configPath)
		if err != nil {
			return err
		}
		return c.run(ctx, cfg, fs.Args(), stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: run gitfleet-agent --help", args[0])
}

func firstNonEmpty(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// openWithOutbox wires the engine with the on-disk outbox as its reporter:
// reports made while the daemon is not running wait there for it.
func openWithOutbox(cfg Config, logTo io.Writer) (*device, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	// Held until the command ends, so no daemon starts meanwhile.
	daemonLock, err := lockDaemon(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn})).With("device", cfg.Device.ID)
	ob, err := outbox.Open(outbox.Config{Dir: filepath.Join(cfg.DataDir, "outbox"), Fleet: cfg.Device.Fleet, Device: cfg.Device.ID}, log)
	if err != nil {
		daemonLock.Close()
		return nil, err
	}
	d, err := open(cfg, ob, log)
	if err != nil {
		daemonLock.Close()
		return nil, err
	}
	d.locks = append(d.locks, daemonLock)
	return d, nil
}

func confirm(ctx context.Context, cfg Config, stdout, stderr io.Writer, healthy bool, reason string) error {
	d, err := openWithOutbox(cfg, stderr)
	if err != nil {
		return err
	}
	defer d.Close()
	return report(stdout, d.engine, d.engine.Confirm(ctx, healthy, reason))
}

// report prints where an engine run ended.
func report(w io.Writer, e *update.Engine, err error) error {
	j := e.Journal()
	switch {
	case errors.Is(err, update.ErrRebooting):
		fmt.Fprintf(w, "installed %s into slot group %s; rebooting to try it\n", j.Update.Release.Version, j.Update.Target)
		return nil
	case errors.Is(err, update.ErrAwaitingConfirmation):
		fmt.Fprintf(w, "%s is running from slot group %s and waits for 'gitfleet-agent commit' or 'rollback'\n", j.Update.Release.Version, j.Update.Target)
		return nil
	case err != nil:
		return err
	}
	if r := j.LastResult; r != nil && r.State != update.Succeeded {
		what := "update"
		if r.Release.Version != "" {
			what = "update to " + r.Release.Version
		}
		return fmt.Errorf("%s %s: %s: %s", what, r.State, r.Error.Code, r.Error.Message)
	}
	fmt.Fprintf(w, "running %s\n", j.Installed.Version)
	return nil
}

// Status is what `gitfleet-agent status` prints.
type Status struct {
	Device string `json:"device"`
	// Labels are agent.yaml's device.labels, which every status carries
	// for fleet.yaml's label selectors.
	Labels    map[string]string `json:"labels,omitempty"`
	State     update.State      `json:"state"`
	Installed update.Release    `json:"installed"`
	Update    *update.Progress  `json:"update,omitempty"`
	Last      *update.Outcome   `json:"last_result,omitempty"`
	// Confirmed is true when no new release waits for its trial to end.
	Confirmed bool `json:"confirmed"`
	// BootedSlot is the slot group running, ActiveSlot the group the
	// bootloader starts next (they differ once an update is armed and
	// after a rollback was decided), BootID the id of this boot. Each is
	// omitted when the device cannot tell (the script bootloader cannot
	// say which group it starts).
	BootedSlot string `json:"booted_slot,omitempty"`
	ActiveSlot string `json:"active_slot,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
}

func printStatus(w io.Writer, cfg Config) error {
	j, err := update.ReadJournal(filepath.Join(cfg.DataDir, "journal.json"))
	if err != nil {
		return err
	}
	s := Status{Device: cfg.Device.ID, Labels: cfg.Device.Labels, State: j.State, Installed: j.Installed, Update: j.Update, Last: j.LastResult,
		Confirmed: j.State == update.Idle}
	dev := &device{cfg: cfg}
	if _, err := dev.wireBoot(); err != nil {
		return err
	}
	s.BootID, s.BootedSlot, s.ActiveSlot = dev.bootFacts()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
