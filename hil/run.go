package hil

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfleet/gitfleet/hil/console"
	"github.com/gitfleet/gitfleet/hil/junit"
	"github.com/gitfleet/gitfleet/hil/power"
	"github.com/gitfleet/gitfleet/hil/vboard"
)

// Options are the runner's settings besides the rig and the plan.
type Options struct {
	// LogDir receives one console log per board and scenario run:
	// LogDir/BOARD/NNN-SCENARIO.log.
	LogDir string
	// WorkDir holds the run's bundles, throwaway keys and the virtual
	// boards the runner starts; default a temporary directory, removed
	// at the end.
	WorkDir string
	// Agent is the gitfleet-agent binary virtual boards run when the rig
	// names none; default the one beside this program, else on $PATH.
	Agent string
	Log   *slog.Logger
}

// Run runs the plan on every board of the rig, the boards in parallel and
// each board's scenarios in order, and returns the JUnit report: a suite per
// board, a case per scenario run (and one for the first boot). The error is
// for a run that could not start; a failed scenario is in the report.
func Run(ctx context.Context, rig *Rig, plan *Plan, opts Options) (*junit.Report, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "gitfleet-hil-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		opts.WorkDir = dir
	}
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(opts.WorkDir, "logs")
	}
	for _, d := range []string{filepath.Join(opts.WorkDir, "bundles"), filepath.Join(opts.WorkDir, "keys"), opts.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s, err := loadSigners(ctx, rig.Trust, filepath.Join(opts.WorkDir, "keys"))
	if err != nil {
		return nil, err
	}
	var types []string
	for _, b := range rig.Boards {
		types = append(types, b.DeviceType)
	}
	bs := newBundles(filepath.Join(opts.WorkDir, "bundles"), s, types)
	if err := bs.start(rig.Bundles); err != nil {
		return nil, err
	}
	defer bs.stop()

	fl, srv, err := openFleet(ctx, rig, opts)
	if err != nil {
		return nil, err
	}
	if srv != nil {
		// Stopped after the boards, whose last reports it takes.
		defer func() {
			if err := srv.Stop(); err != nil {
				opts.Log.Warn("stopping the server", "err", err)
			}
		}()
	}

	// Virtual boards the runner starts live as long as the run.
	vctx, stopBoards := context.WithCancel(ctx)
	boards, vg := &errgroup.Group{}, &errgroup.Group{}
	defer func() {
		stopBoards()
		vg.Wait()
	}()
	// Every virtual board starts before any board runs, so a board that
	// cannot start fails the run before anything ran.
	rigBoards := append([]Board(nil), rig.Boards...)
	for i, b := range rigBoards {
		if b.Virtual == nil {
			continue
		}
		vb, err := startVirtual(vctx, vg, b, s.root, srv, opts)
		if err != nil {
			return nil, err
		}
		rigBoards[i].Console = console.Config{Port: vb.ConsolePath()}
		rigBoards[i].Power.Socket = vb.ControlPath()
	}
	report := &junit.Report{Name: "gitfleet-hil"}
	var mu sync.Mutex // guards report
	for _, b := range rigBoards {
		suite := report.Suite(b.Name)
		boards.Go(func() error {
			r := &boardRun{b: b, plan: plan, bundles: bs, fleet: fl, opts: opts, add: func(c junit.Case) {
				mu.Lock()
				defer mu.Unlock()
				suite.Add(c)
			}}
			r.run(ctx)
			return nil
		})
	}
	boards.Wait()
	report.Total()
	return report, nil
}

// openFleet returns the server the boards report to: the rig's, or one it
// starts (returned too, for the caller to stop) that knows the rig's
// virtual boards.
func openFleet(ctx context.Context, rig *Rig, opts Options) (*fleet, *embeddedServer, error) {
	if rig.Server.Embedded == nil {
		fl, err := dialFleet(rig.Server)
		return fl, nil, err
	}
	bin, err := findBinary(rig.Server.Embedded.Binary, "gitfleet-server", "server.embedded.binary")
	if err != nil {
		return nil, nil, err
	}
	var devices []string
	for _, b := range rig.Boards {
		devices = append(devices, b.DeviceID)
	}
	srv, err := startServer(ctx, bin, filepath.Join(opts.WorkDir, "server"), filepath.Join(opts.LogDir, "gitfleet-server.log"), devices)
	if err != nil {
		return nil, nil, err
	}
	fl, err := srv.fleet(rig.Server)
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	return fl, srv, nil
}

// startVirtual starts a virtual board in this process for a rig board
// marked virtual, with its state under the work directory, reporting to
// srv.
func startVirtual(ctx context.Context, g *errgroup.Group, b Board, root string, srv *embeddedServer, opts Options) (*vboard.Board, error) {
	agent, err := findBinary(cmp.Or(b.Virtual.Agent, opts.Agent), "gitfleet-agent", "virtual.agent")
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", b.Name, err)
	}
	vb, err := vboard.New(vboard.Config{Dir: filepath.Join(opts.WorkDir, "boards", b.Name), Agent: agent,
		DeviceID: b.DeviceID, DeviceType: b.DeviceType, Fleet: embeddedFleet, Root: root,
		Broker: srv.Broker, MQTTPasswordFile: srv.Passwords[b.DeviceID],
		Watchdog: b.Virtual.Watchdog, SlotSize: b.Virtual.SlotSize, Log: opts.Log.With("board", b.Name)})
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", b.Name, err)
	}
	g.Go(func() error { return vb.Run(ctx) })
	return vb, nil
}

// findBinary returns path if set, else the program name beside the running
// one, else on $PATH; field names the rig field that sets it.
func findBinary(path, name, field string) (string, error) {
	if path != "" {
		return path, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: no %s beside gitfleet-hil or on $PATH: build it (make build) or set %s", field, name, field)
	}
	return p, nil
}

// A boardRun runs the plan on one board.
type boardRun struct {
	b       Board
	plan    *Plan
	bundles *bundles
	fleet   *fleet
	opts    Options
	add     func(junit.Case)
	n       int // scenario runs so far, for log names
}

func (r *boardRun) run(ctx context.Context) {
	log := r.opts.Log.With("board", r.b.Name)
	sw, closePower, err := openPower(r.b)
	var con *console.Console
	if err == nil {
		con, err = console.Open(r.b.Console)
	}
	if err != nil {
		r.fail("power on and boot", err)
		for _, s := range r.plan.Scenarios {
			r.fail(s.Name, fmt.Errorf("not run: %v", err))
		}
		return
	}
	defer closePower()
	defer con.Close()
	d := &device{b: r.b, con: con, power: sw, reports: consoleReports{}}
	up := r.step(ctx, con, "power on and boot", func(ctx context.Context) error {
		if err := d.powerCycle(ctx); err != nil {
			return err
		}
		if _, err := d.boot(ctx, 1, 0); err != nil {
			return err
		}
		// Whatever a previous run left in progress ends first; then the
		// server must know the board as its console shows it.
		s, err := d.settle(ctx)
		if err != nil {
			return err
		}
		return r.fleet.agree(ctx, expectation{device: d.b.DeviceID, status: s, slot: d.slot})
	})
	log.Info("board", "scenario", "power on and boot", "ok", up)
	for _, s := range r.plan.Scenarios {
		rel, _ := r.plan.Find(s.Release)
		for i := range s.Repeat {
			name := s.Name
			if s.Repeat > 1 {
				name = fmt.Sprintf("%s #%d (seed %d)", s.Name, i+1, s.Seed+uint64(i))
			}
			if !up {
				r.fail(name, errors.New("not run: the board did not boot"))
				continue
			}
			st := &step{d: d, bundles: r.bundles, fleet: r.fleet, rel: rel, seed: s.Seed + uint64(i)}
			ok := r.step(ctx, con, name, func(ctx context.Context) error { return st.run(ctx, s.Type) })
			log.Info("board", "scenario", name, "ok", ok)
		}
	}
	// Leave the board off, as a rig is found when the next run starts.
	sw.Off(context.WithoutCancel(ctx))
}

// step runs fn as one test case with its own console log and a deadline
// that no scenario should reach.
func (r *boardRun) step(ctx context.Context, con *console.Console, name string, fn func(context.Context) error) bool {
	r.n++
	path := filepath.Join(r.opts.LogDir, r.b.Name, fmt.Sprintf("%03d-%s.log", r.n, slug(name)))
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		r.fail(name, err)
		return false
	}
	defer f.Close()
	tl := &tailLog{w: f}
	con.SetLog(tl)
	defer con.SetLog(nil)
	budget := r.b.InstallTimeout + 8*r.b.BootTimeout + r.fleet.timeout
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	err = fn(ctx)
	c := junit.Case{Name: name, Classname: "gitfleet-hil." + r.b.Name, Time: time.Since(start).Seconds(),
		SystemOut: "[[ATTACHMENT|" + path + "]]"}
	if err != nil {
		fmt.Fprintf(f, "--- FAIL: %v\n", err)
		c.Failure = &junit.Failure{Message: err.Error(), Type: "scenario", Text: "last console lines:\n" + tl.String()}
	}
	r.add(c)
	return err == nil
}

func (r *boardRun) fail(name string, err error) {
	r.add(junit.Case{Name: name, Classname: "gitfleet-hil." + r.b.Name, Failure: &junit.Failure{Message: err.Error(), Type: "setup"}})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func slug(s string) string { return strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-") }

// tailLog writes the console log and keeps its last lines for a failure's
// message.
type tailLog struct {
	mu    sync.Mutex
	w     *os.File
	lines []string
}

const tailLines = 40

func (t *tailLog) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, strings.TrimRight(string(p), "\n"))
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
	return t.w.Write(p)
}

func (t *tailLog) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// openPower returns the board's power driver and what closes it.
func openPower(b Board) (switcher, func(), error) {
	p := b.Power
	switch p.Type {
	case "command":
		return &power.Command{OnCommand: p.OnCommand, OffCommand: p.OffCommand, Timeout: p.Timeout}, func() {}, nil
	case "relay":
		return &power.Relay{Port: p.Port, OnBytes: p.OnBytes, OffBytes: p.OffBytes}, func() {}, nil
	case "modem":
		m, err := power.OpenModem(p.Port.Port, p.Line, p.ActiveLow)
		if err != nil {
			return nil, nil, err
		}
		return m, func() { m.Close() }, nil
	case "vboard":
		return &power.VBoard{Socket: p.Socket}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("power type %q", p.Type)
}
