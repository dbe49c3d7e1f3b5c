package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/backoff"
)

// Config describes a simulated fleet.
type Config struct {
	// Brokers are the MQTT brokers' URLs (tcp://HOST:PORT), taken by the
	// devices in turn. Several listeners of one broker let more devices
	// connect from one address than its ephemeral ports allow (about 28,000
	// per destination on Linux's default range).
	Brokers []string
	// Fleet, Channel and DeviceType are every device's.
	Fleet, Channel, DeviceType string
	// IDPrefix begins every device id; the rest is the device's number.
	IDPrefix string
	// Devices is how many devices there are.
	Devices int
	// Root is the pinned root.json the devices trust.
	Root []byte
	// Fail is the fraction of devices (0 to 1) whose new release fails its
	// health check after the reboot, so that the device rolls back.
	Fail float64
	// SlotSize is the size of every slot (default 1 MiB); it needs only
	// hold the largest image: a slot's memory is what is written to it.
	SlotSize int64
	// Dir holds each device's journal and accepted sequences; best on a
	// tmpfs.
	Dir string
	// ConnectRate is how many devices start connecting per second (default
	// 2000).
	ConnectRate float64
	// KeepAlive and Heartbeat are the links' (defaults 60 s and 5 min).
	KeepAlive, Heartbeat time.Duration
	// Reconnect paces a link's connection attempts after a failure.
	Reconnect backoff.Policy
	// BootTime is how long a simulated reboot takes.
	BootTime time.Duration
	// Installs bounds the engine runs at once (default 32 per CPU). All
	// devices share the simulator's CPUs and memory, as no real fleet does:
	// thousands of bundle verifications at once would only thrash them
	// (each image reader holds two chunks, 1 MiB each by default). A device
	// waiting for its turn stays idle, reboots wait outside the bound, and a
	// device resuming after its reboot goes before those yet to install.
	Installs int
	// HTTP downloads bundles (default http.DefaultClient).
	HTTP *http.Client
	Log  *slog.Logger
}

func (c *Config) check() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("sim: Config.Brokers: name at least one broker")
	case c.Devices <= 0:
		return errors.New("sim: Config.Devices: want at least one device")
	case c.Fail < 0 || c.Fail > 1:
		return fmt.Errorf("sim: Config.Fail %v: want a fraction from 0 to 1", c.Fail)
	case c.Fleet == "" || c.Channel == "" || c.DeviceType == "":
		return errors.New("sim: Config.Fleet, Channel and DeviceType: set all three")
	case c.Dir == "":
		return errors.New("sim: Config.Dir: set a directory for the devices' journals")
	}
	if c.SlotSize == 0 {
		c.SlotSize = 1 << 20
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 2000
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = time.Minute
	}
	if c.Installs == 0 {
		c.Installs = 32 * runtime.GOMAXPROCS(0)
	}
	if c.HTTP == nil {
		c.HTTP = http.DefaultClient
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// A Fleet is a simulated fleet of devices.
type Fleet struct {
	cfg       Config
	log       *slog.Logger
	targets   *trust.Verifier // bundles
	timestamp *trust.Verifier // channel and desired states
	bundles   *bundles
	runs      *tokens // a token per engine run under way

	mu      sync.Mutex
	devices []*device // as they were started

	events       atomic.Int64 // events the broker acknowledged
	engineErrors atomic.Int64
}

// New returns a fleet for cfg; Run starts it.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	root, err := trust.LoadRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("sim: root: %w", err)
	}
	f := &Fleet{cfg: cfg, log: cfg.Log}
	if f.targets, err = root.Verifier(trust.RoleTargets); err != nil {
		return nil, fmt.Errorf("sim: root: %w", err)
	}
	if f.timestamp, err = root.Verifier(trust.RoleTimestamp); err != nil {
		return nil, fmt.Errorf("sim: root: %w", err)
	}
	f.bundles = newBundles(cfg.HTTP, f.targets)
	f.runs = newTokens(cfg.Installs)
	return f, nil
}

// Run starts the devices at Config.ConnectRate and keeps them running until
// ctx ends; then every device marks itself offline and disconnects, and
// Run returns.
func (f *Fleet) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	every := time.Duration(float64(time.Second) / f.cfg.ConnectRate)
	start := time.Now()
	for n := range f.cfg.Devices {
		// Pace by the schedule, not by sleeps, so that slow starts catch up.
		if !sleep(ctx, time.Until(start.Add(time.Duration(n)*every))) {
			break
		}
		d, err := newDevice(f, n)
		if err != nil {
			g.Go(func() error { return fmt.Errorf("device %d: %w", n, err) })
			break
		}
		f.mu.Lock()
		f.devices = append(f.devices, d)
		f.mu.Unlock()
		g.Go(func() error { return d.run(ctx) })
	}
	return g.Wait()
}

// Started returns how many devices have been started.
func (f *Fleet) Started() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.devices)
}

// snapshot returns the devices started so far.
func (f *Fleet) snapshot() []*device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices[:len(f.devices):len(f.devices)]
}

// A StateCount is how many devices are in one update state.
type StateCount struct {
	State string `json:"state"`
	N     int    `json:"n"`
}

// States counts the devices by their engine's state, in the order of the
// state machine.
func (f *Fleet) States() []StateCount {
	n := map[update.State]int{}
	for _, d := range f.snapshot() {
		if p := d.now.Load(); p != nil {
			n[p.state]++
		}
	}
	var out []StateCount
	for s, c := range n {
		out = append(out, StateCount{State: string(s), N: c})
	}
	sort.Slice(out, func(i, j int) bool { return stateOrder(out[i].State) < stateOrder(out[j].State) })
	return out
}

var order = []update.State{update.Idle, update.Checking, update.Writing, update.Verifying, update.Arming,
	update.Rebooting, update.Testing, update.Committing, update.RollingBack, update.Succeeded, update.Failed, update.RolledBack}

func stateOrder(s string) int {
	for i, o := range order {
		if string(o) == s {
			return i
		}
	}
	return len(order)
}

// Installed counts the devices that committed version and run it.
func (f *Fleet) Installed(version string) int {
	return f.count(func(p *phase) bool { return p.state == update.Idle && p.installed == version })
}

// Ended counts the devices whose last update, of version, has ended:
// committed, failed or rolled back.
func (f *Fleet) Ended(version string) int {
	return f.count(func(p *phase) bool { return p.state == update.Idle && p.ended == version })
}

// count counts the devices whose phase satisfies ok.
func (f *Fleet) count(ok func(*phase) bool) int {
	n := 0
	for _, d := range f.snapshot() {
		if p := d.now.Load(); p != nil && ok(p) {
			n++
		}
	}
	return n
}

// Events returns how many events the broker acknowledged.
func (f *Fleet) Events() int64 { return f.events.Load() }

// EngineErrors returns how many engine runs ended in an error other than
// an outcome (a failed update is an outcome, not an error).
func (f *Fleet) EngineErrors() int64 { return f.engineErrors.Load() }
