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
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gitfleet/gitfleet/agent/follow"
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
	engine *device            // the device of the current or last run; under mu
	health *gitfleetv1.Health // the last health checks' results; under mu

	states *follow.Follower // the channel's and the standing desired state
	wake   chan struct{}    // a new state was accepted; latest wins
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
	// The standing desired state (a cancel from the penalty box, say) is
	// kept beside the link's accepted sequences and applied at start.
	states, err := follow.Open(filepath.Join(cfg.DataDir, "follow.json"),
		follow.Device{Fleet: cfg.Device.Fleet, ID: cfg.Device.ID, Type: cfg.Device.Type})
	if err != nil {
		return err
	}
	d := &daemon{cfg: cfg, log: log, outbox: ob, states: states, wake: make(chan struct{}, 1)}
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

// offer receives accepted states from the link. A cancel (an override, or
// an aborted rollout) stops a running update at its next chunk, since the
// engine asks the states held (Engine.Cancelled); follow decides on the
// rest.
func (d *daemon) offer(_ context.Context, s link.State) {
	if err := d.states.Accept(s); err != nil {
		d.log.Error("state", "err", err) // it stands in memory meanwhile
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
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
	dev.engine.Cancelled = d.states.Cancels
	dev.engine.OnTransition(func(j update.Journal) {
		d.noteHealth(dev)
		d.publish(j)
	})
	// The journal as fn left it, not as it was when fn began.
	defer func() { d.publish(dev.engine.Journal()) }()
	return fn(dev.engine)
}

// follow resumes whatever was in progress and acts on the states held
// (the standing desired state from disk at start), then acts on each new
// state.
func (d *daemon) follow(ctx context.Context) error {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
			err := d.withEngine(func(e *update.Engine) error {
				// A cancel standing from before a restart stops the
				// resumed write too (Engine.Cancelled).
				if err := e.Resume(ctx); err != nil {
					return err
				}
				return d.act(ctx, e)
			})
			if d.settle(ctx, err) {
				retry.Reset(30 * time.Second)
			}
		case <-d.wake:
			err := d.withEngine(func(e *update.Engine) error { return d.act(ctx, e) })
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

// act does what the states held ask for (follow.Follower.Next).
func (d *daemon) act(ctx context.Context, e *update.Engine) error {
	next, err := d.states.Next(e.Journal())
	switch {
	case err != nil:
		return err
	case next.Rollback:
		return e.Confirm(ctx, false, "rollback requested by the server")
	case next.Install == nil:
		return nil
	}
	d.log.Info("installing", "release", next.Install.GetVersion(), "why", next.Why)
	return e.InstallRelease(ctx, source.ReleaseRef(next.Install), next.Install.GetBundleDigest())
}

// publish sets the device status from the journal.
func (d *daemon) publish(j update.Journal) {
	st := j.Status()
	st.AgentVersion, st.DeviceType, st.Channel = agentVersion(), d.cfg.Device.Type, d.cfg.Device.Channel
	st.Labels = d.cfg.Device.Labels // the server's label selectors match them
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
