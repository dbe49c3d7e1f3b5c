package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/agent/health"
	"github.com/gitfleet/gitfleet/agent/slot"
	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/agent/system"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/tlsfiles"
)

// device holds the parts of the agent wired from a config.
type device struct {
	cfg    Config
	engine *update.Engine
	lock   *os.File
	locks  []*os.File // more locks to release on Close
	// checker holds the results of the last health checks, for the status.
	checker *health.Checker
	// For the status: which group runs, which the bootloader starts next
	// (env is nil for the script backend, which cannot say), and the boot
	// id.
	slots  *slot.Pair
	env    *boot.Env
	system *system.System
}

// wireBoot wires the bootloader backend, the slots and the system from the
// config, and returns the bootloader. It takes no lock and writes nothing:
// status uses it beside a running daemon.
func (d *device) wireBoot() (update.Bootloader, error) {
	cfg := d.cfg
	var (
		bl       update.Bootloader
		detector slot.Detector
	)
	b := cfg.Bootloader
	if b.Type == "script" {
		s, err := boot.NewScript(b.Commands)
		if err != nil {
			return nil, fmt.Errorf("bootloader: %w", err)
		}
		bl = s
	} else {
		var store boot.Store
		switch b.Type {
		case "uboot":
			fc, err := bootenv.ReadFwEnvConfig(b.FwEnvConfig)
			if err != nil {
				return nil, fmt.Errorf("bootloader.fw_env_config: %w", err)
			}
			store = bootenv.NewUBootEnv(fc)
		case "grub":
			store = &bootenv.GRUBEnv{Path: b.GRUBEnv}
		case "file":
			store = &boot.File{Path: b.File}
		}
		env, err := boot.NewEnv(store, b.Convention)
		if err != nil {
			return nil, fmt.Errorf("bootloader: %w", err)
		}
		bl, detector, d.env = env, env, env
	}
	slots, err := slot.New(cfg.Slots, detector)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	d.slots = slots
	d.system = &system.System{BootIDFile: cfg.System.BootIDFile, RebootCommand: cfg.System.RebootCommand}
	return bl, nil
}

// bootFacts returns the boot id, the group running and the group the
// bootloader starts next, for the status. A fact the device cannot
// read now is left empty: the status is sent anyway.
func (d *device) bootFacts() (bootID, booted, active string) {
	bootID, _ = d.system.BootID()
	booted, _ = d.slots.Booted()
	if d.env != nil {
		if s, err := d.env.State(context.Background()); err == nil {
			active = s.Default
		}
	}
	return bootID, booted, active
}

// bootloader is what the agent needs of a bootloader backend.
type bootloader interface {
	update.Bootloader
}

// open wires the engine from cfg and takes the data directory's lock, so
// two agents (the daemon and a command) never run the engine at once.
func open(cfg Config, reporter update.Reporter, log *slog.Logger) (*device, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	d := &device{cfg: cfg, lock: lock}
	if err := d.wire(reporter, log); err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

func (d *device) wire(reporter update.Reporter, log *slog.Logger) error {
	cfg := d.cfg
	pinned, err := os.ReadFile(cfg.Trust.Root)
	if err != nil {
		return fmt.Errorf("trust.root: %w", err)
	}
	root, err := trust.LoadRoot(pinned)
	if err != nil {
		return fmt.Errorf("trust.root %s: %w", cfg.Trust.Root, err)
	}
	verifier, err := root.Verifier(trust.RoleTargets)
	if err != nil {
		return fmt.Errorf("trust.root %s: %w", cfg.Trust.Root, err)
	}

	bl, err := d.wireBoot()
	if err != nil {
		return err
	}
	var checker update.Checker
	if !cfg.Health.Manual {
		hc := &health.Checker{}
		for _, h := range cfg.Health.Commands {
			hc.Checks = append(hc.Checks, health.Command(h.Name, h.Command, h.Timeout))
		}
		checker, d.checker = hc, hc
	}
	var upSlots update.Slots = d.slots
	if faultsArmed {
		reporter = faultReporter{reporter}
		if faultByte > 0 {
			upSlots = faultSlots{Slots: d.slots, written: new(int64)}
		}
	}
	tlsConfig, err := fetchTLS(cfg)
	if err != nil {
		return err
	}
	client := source.ClientTLS(tlsConfig)
	d.engine = &update.Engine{
		JournalPath: filepath.Join(cfg.DataDir, "journal.json"),
		Verifier:    verifier,
		Open: func(_ context.Context, ref string) (update.Source, error) {
			return source.Open(ref, client)
		},
		Slots:    upSlots,
		Boot:     bl,
		System:   d.system,
		Health:   checker,
		Reporter: reporter,
		Policy:   update.Policy{DeviceType: cfg.Device.Type},
		Log:      log,
	}
	return d.engine.Load()
}

// fetchTLS is the TLS configuration of bundle downloads: the object
// store's CA and, for mTLS, the device's certificate.
func fetchTLS(cfg Config) (*tls.Config, error) {
	f := cfg.Fetch
	if f.CAFile == "" && f.CertFile == "" {
		return nil, nil
	}
	return tlsfiles.Client{CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile,
		CAField: "fetch.ca_file", CertField: "fetch.cert_file"}.Config()
}

func (d *device) Close() error {
	for _, l := range d.locks {
		l.Close()
	}
	return d.lock.Close()
}

// lockDir takes an exclusive lock on dir/lock, failing at once if another
// agent holds it.
func lockDir(dir string) (*os.File, error) {
	return lockFile(filepath.Join(dir, "lock"), "another gitfleet-agent is using "+dir)
}

// lockDaemon takes dir/daemon.lock for the daemon's lifetime. Commands that
// report (install, resume, commit, rollback) check it: the daemon's outbox
// sender would not see reports another process adds to its directory.
func lockDaemon(dir string) (*os.File, error) {
	return lockFile(filepath.Join(dir, "daemon.lock"), "gitfleet-agent run is running on "+dir+": stop it first, or let the server drive the update")
}

func lockFile(path, busy string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s (lock: %v)", busy, err)
	}
	return f, nil
}
