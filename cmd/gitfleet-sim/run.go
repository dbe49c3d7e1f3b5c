package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/sim"
)

// Result is what a run measured: the -o json output.
type Result struct {
	Devices int `json:"devices"`
	// Connected is the broker's count of connected clients once every
	// device had started (devices, plus the server and this program's
	// observers), -1 if the broker does not say; ConnectSeconds how long
	// until the count reached the devices.
	Connected      int64   `json:"connected"`
	ConnectSeconds float64 `json:"connect_s"`
	// Held is the broker's client count at the end of the run.
	Held    int64          `json:"held"`
	Rollout *RolloutResult `json:"rollout,omitempty"`
	Storm   *StormResult   `json:"storm,omitempty"`
	Server  *sim.Usage     `json:"server,omitempty"`
	Broker  *sim.Usage     `json:"broker,omitempty"`
	API     *sim.Latencies `json:"api,omitempty"`
	// SimRSS is this program's peak resident size, in MiB, and
	// PerDeviceKiB that divided by the devices.
	SimRSS       float64 `json:"sim_rss_mib"`
	PerDeviceKiB float64 `json:"per_device_kib"`
	Events       int64   `json:"events"`
	EngineErrors int64   `json:"engine_errors"`
}

// RolloutResult is a rollout's outcome and its times.
type RolloutResult struct {
	sim.Outcome
	// ExcludingWaveWait is Elapsed less one wave duration per wave advance:
	// the time the soak of each wave does not explain.
	ExcludingWaveWait float64 `json:"excluding_wave_wait_s"`
	// Installed counts the devices whose engine committed the version.
	Installed int `json:"installed"`
	// DevicesEnded is the seconds from the tag until every device's engine
	// had ended its update (committed, or failed and rolled back), by the
	// simulator's own count; -1 if that did not happen.
	DevicesEnded float64 `json:"devices_ended_s"`
}

// StormResult is a status storm's rates.
type StormResult struct {
	Messages int64 `json:"messages"`
	// PublishRate is the messages per second the broker acknowledged to the
	// devices; IngestRate those per second that reached their end: the
	// server's store (as its API shows), or the sink with --peer.
	PublishRate float64 `json:"publish_per_s"`
	IngestRate  float64 `json:"ingest_per_s"`
	Into        string  `json:"into"`
	Seconds     float64 `json:"seconds"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	if cfg.PprofAddr != "" {
		ln, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		defer ln.Close()
		go http.Serve(ln, nil) // net/http/pprof's handlers are on the default mux
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := raiseFileLimit(cfg.Devices); err != nil {
		return err
	}
	root, err := os.ReadFile(cfg.Root)
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if cfg.Dir == "" {
		base := "/dev/shm"
		if _, err := os.Stat(base); err != nil {
			base = ""
		}
		if cfg.Dir, err = os.MkdirTemp(base, "gitfleet-sim-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.Dir)
	}
	fleet, err := sim.New(sim.Config{
		Brokers: cfg.Brokers, Fleet: cfg.Fleet, Channel: cfg.Channel, DeviceType: cfg.DeviceType,
		IDPrefix: cfg.IDPrefix, Devices: cfg.Devices, Root: root, Fail: cfg.Fail, SlotSize: cfg.SlotSize,
		Dir: cfg.Dir, ConnectRate: cfg.ConnectRate, KeepAlive: cfg.KeepAlive, Heartbeat: cfg.Heartbeat,
		BootTime: cfg.BootTime, Installs: cfg.Installs, Log: log,
	})
	if err != nil {
		return err
	}
	r := &runner{cfg: cfg, fleet: fleet, log: log, stderr: stderr, res: Result{Devices: cfg.Devices, Connected: -1, Held: -1}}
	devCtx, stopDevices := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(devCtx)
	g.Go(func() error { return fleet.Run(gctx) })
	scenarioErr := r.scenario(ctx, gctx)
	stopDevices()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && scenarioErr == nil {
		scenarioErr = err
	}
	r.res.Events, r.res.EngineErrors = fleet.Events(), fleet.EngineErrors()
	if s, err := sim.ReadProc(os.Getpid()); err == nil {
		r.res.SimRSS = float64(s.HWM) / (1 << 20)
		r.res.PerDeviceKiB = float64(s.HWM) / 1024 / float64(cfg.Devices)
	}
	if err := r.print(stdout); err != nil {
		return err
	}
	return scenarioErr
}

type runner struct {
	cfg    Config
	fleet  *sim.Fleet
	log    *slog.Logger
	stderr io.Writer
	res    Result

	api    *apiclient.Client
	broker *sim.Broker
	server *sim.Watch
	mosq   *sim.Watch
}

// scenario runs the phases the flags ask for while the devices run; it
// stops early if the devices stop (devCtx).
func (r *runner) scenario(ctx, devCtx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-devCtx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	cfg := r.cfg
	start := time.Now()
	password, err := cfg.mqttPassword()
	if err != nil {
		return err
	}
	if r.broker, err = sim.WatchBroker(ctx, cfg.Brokers[0], cfg.MQTTUser, password, r.log); err != nil {
		r.progress("no client count from the broker: %v", err)
	} else {
		defer r.broker.Close()
	}
	if cfg.ServerPID > 0 {
		if r.server, err = sim.WatchProc(ctx, cfg.ServerPID); err != nil {
			return fmt.Errorf("--server-pid: %w", err)
		}
	}
	if cfg.BrokerPID > 0 {
		if r.mosq, err = sim.WatchProc(ctx, cfg.BrokerPID); err != nil {
			return fmt.Errorf("--broker-pid: %w", err)
		}
	}
	var prober *sim.Prober
	if cfg.Server != "" {
		token, err := cfg.token()
		if err != nil {
			return err
		}
		if r.api, err = apiclient.New(cfg.Server, token, nil); err != nil {
			return fmt.Errorf("--server: %w", err)
		}
		prober = sim.NewProber(r.api, cfg.Channel)
		go prober.Run(ctx, 100*time.Millisecond)
	}
	defer r.usage(start, prober)

	if err := r.connect(ctx, start); err != nil {
		return err
	}
	if cfg.Version != "" {
		if err := r.rollout(ctx); err != nil {
			return err
		}
	}
	if cfg.Storm > 0 {
		if err := r.storm(ctx, password); err != nil {
			return err
		}
	}
	if cfg.Hold > 0 {
		r.progress("holding %d devices for %v", cfg.Devices, cfg.Hold)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Hold):
		}
	}
	if r.broker != nil {
		r.res.Held = r.broker.Connected()
	}
	return nil
}

// connect waits until every device started and the broker counts them all.
func (r *runner) connect(ctx context.Context, start time.Time) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		started, connected := r.fleet.Started(), int64(-1)
		if r.broker != nil {
			connected = r.broker.Connected()
		}
		r.progress("connecting: %d started, %s connected", started, count(connected))
		if started == r.cfg.Devices && (r.broker == nil || connected >= int64(r.cfg.Devices)) {
			r.res.Connected, r.res.ConnectSeconds = connected, time.Since(start).Seconds()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d devices connected: %w", connected, r.cfg.Devices, ctx.Err())
		case <-t.C:
		}
	}
}

// rollout releases --version with --release-cmd and follows its rollout
// to its end.
func (r *runner) rollout(ctx context.Context) error {
	if c := r.cfg.ReleaseCmd; c != "" {
		r.cfg.Since = time.Now()
		r.progress("releasing %s: %s", r.cfg.Version, c)
		cmd := exec.CommandContext(ctx, "sh", "-c", c)
		cmd.Stdout, cmd.Stderr = r.stderr, r.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("--release-cmd: %w", err)
		}
	}
	ended := -1.0
	out, err := sim.WaitRollout(ctx, r.api, r.cfg.Channel, r.cfg.Version, r.cfg.Since, time.Second, func(ch apiclient.Channel) {
		if ended < 0 && r.fleet.Ended(r.cfg.Version) == r.cfg.Devices {
			ended = time.Since(r.cfg.Since).Seconds()
		}
		c := ch.Counts
		if c == nil {
			c = &apiclient.Counts{}
		}
		r.progress("rollout %s: %s, wave %d, confirmed %d failed %d in progress %d of %d | devices: %s",
			ch.Release, ch.State, ch.Wave, c.Confirmed, c.Failed, c.InProgress, c.Targeted, r.states())
	})
	res := &RolloutResult{Outcome: out, Installed: r.fleet.Installed(r.cfg.Version), DevicesEnded: ended}
	if n := len(out.Waves); n > 0 {
		res.ExcludingWaveWait = out.Elapsed - float64(out.Waves[n-1].Index-out.Waves[0].Index)*r.cfg.WaveDuration.Seconds()
	}
	r.res.Rollout = res
	if err != nil {
		return err
	}
	r.progress("rollout %s %s after %.1f s (%.1f s without wave waits): %s", out.Version, out.State, out.Elapsed, res.ExcludingWaveWait, out.Reason)
	// The devices that were still finishing a rollback when the server
	// halted settle before the storm.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range 30 {
		if idle(r.fleet.States()) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func idle(states []sim.StateCount) bool {
	return len(states) == 1 && states[0].State == "idle"
}

// storm runs a status storm into the server, or into a sink with --peer.
func (r *runner) storm(ctx context.Context, password string) error {
	note := fmt.Sprintf("storm %d", time.Now().UnixNano())
	var sink *sim.Sink
	if r.cfg.Peer {
		var err error
		if sink, err = sim.NewSink(ctx, r.cfg.Brokers[0], r.cfg.MQTTUser, password, r.cfg.Fleet, r.log); err != nil {
			return err
		}
		defer sink.Close()
	}
	r.progress("storm: %d devices publish %d statuses each", r.cfg.Devices, r.cfg.Storm)
	sent, err := r.fleet.Storm(ctx, sim.Storm{Rounds: r.cfg.Storm, Concurrency: 2000, Note: note, Keep: !r.cfg.Peer})
	if err != nil {
		return err
	}
	r.progress("storm: the broker acknowledged %d statuses in %.1f s (%.0f/s); waiting for their end", sent.Messages, sent.Elapsed.Seconds(), sent.Rate())
	var end time.Time
	into := "server"
	if sink != nil {
		into = "sink"
		end, err = sink.Wait(ctx, sent.Messages)
	} else {
		end, err = sim.WaitStored(ctx, r.api, r.cfg.Fleet, r.cfg.Devices, note)
	}
	if err != nil {
		return err
	}
	secs := end.Sub(sent.Start).Seconds()
	r.res.Storm = &StormResult{Messages: sent.Messages, PublishRate: sent.Rate(), IngestRate: float64(sent.Messages) / secs, Into: into, Seconds: secs}
	r.progress("storm: %d statuses reached the %s in %.1f s: %.0f/s", sent.Messages, into, secs, r.res.Storm.IngestRate)
	return nil
}

// usage records the server's and the broker's use of the machine and the
// API's latency over the run.
func (r *runner) usage(start time.Time, p *sim.Prober) {
	if r.server != nil {
		u := r.server.Since(start)
		r.res.Server = &u
	}
	if r.mosq != nil {
		u := r.mosq.Since(start)
		r.res.Broker = &u
	}
	if p != nil {
		l := p.Latency()
		r.res.API = &l
	}
}

func (r *runner) states() string {
	var b strings.Builder
	for _, s := range r.fleet.States() {
		fmt.Fprintf(&b, "%s %d ", s.State, s.N)
	}
	return strings.TrimSpace(b.String())
}

func (r *runner) progress(format string, args ...any) {
	if !r.cfg.Quiet {
		fmt.Fprintf(r.stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func (r *runner) print(w io.Writer) error {
	if r.cfg.Output == "json" {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(r.res)
	}
	res := r.res
	fmt.Fprintf(w, "devices          %d (broker counted %s connected after %.1f s; %s at the end)\n", res.Devices, count(res.Connected), res.ConnectSeconds, count(res.Held))
	if ro := res.Rollout; ro != nil {
		fmt.Fprintf(w, "rollout          %s %s after %.1f s from the tag, %.1f s without wave waits; waves %v\n", ro.Version, ro.State, ro.Elapsed, ro.ExcludingWaveWait, ro.Waves)
		fmt.Fprintf(w, "                 confirmed %d, failed %d of %d targeted; %d devices committed it; every device's update ended after %.1f s; %s\n",
			ro.Counts.Confirmed, ro.Counts.Failed, ro.Counts.Targeted, ro.Installed, ro.DevicesEnded, ro.Reason)
	}
	if s := res.Storm; s != nil {
		fmt.Fprintf(w, "status storm     %d statuses: %.0f/s acknowledged by the broker, %.0f/s into the %s\n", s.Messages, s.PublishRate, s.IngestRate, s.Into)
	}
	if u := res.Server; u != nil {
		fmt.Fprintf(w, "server           %.2f cores, RSS peak %.0f MiB\n", u.CPU, u.RSSPeak)
	}
	if u := res.Broker; u != nil {
		fmt.Fprintf(w, "broker           %.2f cores, RSS peak %.0f MiB\n", u.CPU, u.RSSPeak)
	}
	if a := res.API; a != nil {
		for _, l := range []struct {
			name string
			sim.Latency
		}{{"channel status", a.Channel}, {"device page", a.Devices}} {
			fmt.Fprintf(w, "API %-14s p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d requests (%d errors)\n", l.name, l.P50, l.P99, l.Max, l.Requests, l.Errors)
		}
	}
	_, err := fmt.Fprintf(w, "simulator        RSS peak %.0f MiB, %.1f KiB per device; %d events sent; %d engine errors; %d CPUs\n", res.SimRSS, res.PerDeviceKiB, res.Events, res.EngineErrors, runtime.NumCPU())
	return err
}

func count(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

// raiseFileLimit raises the soft limit on open files to the hard one: each
// device holds a connection.
func raiseFileLimit(devices int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("raise the open files limit: %w", err)
	}
	if need := uint64(devices) + 1000; l.Cur < need {
		return fmt.Errorf("%d devices need about %d open files, and the hard limit is %d: raise it (ulimit -Hn, or run as root with prlimit)", devices, need, l.Cur)
	}
	return nil
}
