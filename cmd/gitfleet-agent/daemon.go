package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/link"
	"github.com/gitfleet/gitfleet/agent/outbox"
	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/trust"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// daemon is gitfleet-agent run: it follows the device's channel and
// desired state over MQTT, installs what they offer, finishes updates after
// reboots, and reports every step.
type daemon struct {
	cfg    Config
	log    *slog.Logger
	outbox *outbox.Outbox
	link   *link.Link

	mu     sync.Mutex         // serialises engine runs within the daemon
	engine *device            // wired without the lock; the lock is taken per run
	health *gitfleetv1.Health // the last health checks' results

	offers chan link.State // latest-wins hand-off from the link
}

func runDaemon(ctx context.Context, cfg Config, stderr io.Writer) error {
	if cfg.MQTT.Broker == "" {
		return errors.New("config: mqtt.broker: set the broker's URL (tcp://HOST:1883 or ssl://HOST:8883) to run the daemon")
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("device", cfg.Device.ID)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	daemonLock, err := lockDaemon(cfg.DataDir)
	if err != nil {
		return err
	}
	defer daemonLock.Close()
	ob, err := outbox.Open(outbox.Config{Dir: filepath.Join(cfg.DataDir, "outbox"), Fleet: cfg.Device.Fleet, Device: cfg.Device.ID}, log)
	if err != nil {
		return err
	}
	pinned, err := os.ReadFile(cfg.Trust.Root)
	if err != nil {
		return fmt.Errorf("trust.root: %w", err)
	}
	root, err := trust.LoadRoot(pinned)
	if err != nil {
		return fmt.Errorf("trust.root: %w", err)
	}
	// Channel and desired states are signed by the online timestamp role.
	online, err := root.Verifier(trust.RoleTimestamp)
	if err != nil {
		return fmt.Errorf("trust.root: %w", err)
	}
	password := os.Getenv("GITFLEET_MQTT_PASSWORD")
	if password == "" && cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.MQTT.PasswordFile)
		if err != nil {
			return fmt.Errorf("mqtt.password_file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	d := &daemon{cfg: cfg, log: log, outbox: ob, offers: make(chan link.State, 1)}
	d.link, err = link.New(link.Config{
		Broker: cfg.MQTT.Broker, Fleet: cfg.Device.Fleet, Device: cfg.Device.ID, Channel: cfg.Device.Channel,
		Username: cfg.MQTT.Username, Password: password,
		CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile,
		Dir: filepath.Join(cfg.DataDir, "link"), Heartbeat: cfg.MQTT.Heartbeat, KeepAlive: cfg.MQTT.KeepAlive,
	}, online, link.Handlers{State: d.offer, Refused: func(topic string, err error) {
		log.Warn("refused a message", "topic", topic, "err", err)
	}}, log)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.link.Run(ctx) })
	g.Go(func() error { return ob.Run(ctx, d.link) })
	g.Go(func() error { return d.follow(ctx) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// offer receives accepted states from the link. A cancel takes effect at
// once; everything else is handed to follow, newest first.
func (d *daemon) offer(_ context.Context, s link.State) {
	if s.Desired != nil && s.Desired.GetAction() == gitfleetv1.Action_ACTION_CANCEL && d.engine != nil {
		d.engine.engine.Cancel()
	}
	select {
	case <-d.offers:
	default:
	}
	d.offers <- s
}

// withEngine runs fn with the engine under the data directory's lock,
// reloading the journal first: a command (commit, rollback, install) may
// have run in between.
func (d *daemon) withEngine(fn func(e *update.Engine) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, err := open(d.cfg, d.outbox, d.log)
	if err != nil {
		return err
	}
	defer dev.Close()
	d.engine = dev
	dev.engine.OnTransition(func(j update.Journal) {
		d.noteHealth(dev)
		d.publish(j)
	})
	// The journal as fn left it, not as it was when fn began.
	defer func() { d.publish(dev.engine.Journal()) }()
	return fn(dev.engine)
}

// follow resumes whatever was in progress, then acts on offers.
func (d *daemon) follow(ctx context.Context) error {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
			err := d.withEngine(func(e *update.Engine) error { return e.Resume(ctx) })
			if d.settle(ctx, err) {
				retry.Reset(30 * time.Second)
			}
		case s := <-d.offers:
			err := d.withEngine(func(e *update.Engine) error { return d.act(ctx, e, s) })
			if d.settle(ctx, err) {
				retry.Reset(30 * time.Second)
			}
		}
	}
}

// settle logs where an engine run ended and reports whether to try resuming
// again later.
func (d *daemon) settle(ctx context.Context, err error) (again bool) {
	switch {
	case err == nil, errors.Is(err, update.ErrNothingToConfirm):
		return false
	case errors.Is(err, update.ErrRebooting):
		d.log.Info("rebooting")
		return false
	case errors.Is(err, update.ErrAwaitingConfirmation):
		d.log.Info("waiting for gitfleet-agent commit or rollback")
		return true
	case ctx.Err() != nil:
		return false
	}
	d.log.Error("update engine", "err", err)
	return true
}

// act decides whether an accepted state asks for an install, and starts it.
func (d *daemon) act(ctx context.Context, e *update.Engine, s link.State) error {
	j := e.Journal()
	if s.Desired != nil {
		switch s.Desired.GetAction() {
		case gitfleetv1.Action_ACTION_PIN:
			return d.install(ctx, e, j, s.Desired.GetRelease(), "pinned")
		case gitfleetv1.Action_ACTION_ROLLBACK:
			if j.State == update.Testing {
				return e.Confirm(ctx, false, "rollback requested by the server")
			}
			d.log.Info("rollback requested, but no new release is on trial", "state", j.State)
		}
		return nil
	}
	cs := s.Channel
	if !link.Reaches(d.cfg.Device.Fleet, d.cfg.Device.ID, cs) {
		return nil
	}
	return d.install(ctx, e, j, cs.GetRelease(), "channel "+cs.GetChannel())
}

func (d *daemon) install(ctx context.Context, e *update.Engine, j update.Journal, rel *gitfleetv1.Release, why string) error {
	switch {
	case rel == nil:
		return nil
	case j.State != update.Idle:
		return nil // one update at a time; the engine resumes its own
	case rel.GetBundleDigest() == j.Installed.Digest:
		return nil // running it
	case rel.GetCounter() < j.Installed.Counter:
		d.log.Warn("offered an older release", "release", rel.GetVersion(), "counter", rel.GetCounter())
		return nil
	case len(rel.GetDeviceTypes()) > 0 && !slices.Contains(rel.GetDeviceTypes(), d.cfg.Device.Type):
		return nil
	case j.LastResult != nil && j.LastResult.State != update.Succeeded && j.LastResult.Release.Digest == rel.GetBundleDigest() && why != "pinned":
		// It failed here already: the server's penalty box decides when to
		// offer it again (a pin).
		return nil
	}
	d.log.Info("installing", "release", rel.GetVersion(), "why", why)
	return e.InstallRelease(ctx, source.ReleaseRef(rel), rel.GetBundleDigest())
}

// publish sets the device status from the journal.
func (d *daemon) publish(j update.Journal) {
	st := j.Status()
	st.AgentVersion, st.DeviceType, st.Channel = agentVersion(), d.cfg.Device.Type, d.cfg.Device.Channel
	st.Time = timestamppb.Now()
	if d.engine != nil {
		st.BootId, st.BootedSlot, st.ActiveSlot = d.engine.bootFacts()
	}
	if d.health != nil {
		st.Health = d.health // the health checks' own results
	}
	if err := d.link.SetStatus(st); err != nil {
		d.log.Error("status", "err", err)
	}
}

// noteHealth keeps the results of the health checks the engine just ran.
func (d *daemon) noteHealth(dev *device) {
	if dev.checker == nil || len(dev.checker.Last) == 0 {
		return
	}
	h := &gitfleetv1.Health{Ok: true}
	for _, r := range dev.checker.Last {
		h.Checks = append(h.Checks, &gitfleetv1.HealthCheck{Name: r.Name, Ok: r.OK, Message: gitfleetv1.CleanText(r.Message)})
		h.Ok = h.Ok && r.OK
	}
	d.health = h
}

func agentVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
