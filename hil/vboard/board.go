package vboard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config describes a virtual board.
type Config struct {
	// Dir holds the board's persistent state: its slots, its bootloader
	// environment and the agent's data. It is created and provisioned at
	// the first start, and kept as it is afterwards, like a board's flash.
	Dir string
	// Agent is the gitfleet-agent binary that healthy images run.
	Agent string
	// DeviceID and DeviceType go into the agent's configuration; Fleet
	// and Channel too (defaults "hil" and "hil").
	DeviceID, DeviceType string
	Fleet, Channel       string
	// Root is the trust root.json the board pins, copied into Dir at the
	// first start.
	Root string
	// Broker, if set, is the MQTT broker (tcp://HOST:PORT) of a gitfleet
	// server: the board's system then runs the agent's daemon, `gitfleet-agent
	// run`, which follows its channel, as a board in a fleet does. Without it
	// the system runs `gitfleet-agent resume` only: updates come from the
	// console (offline installs). MQTTPasswordFile holds the password of the
	// device's broker account, whose name is DeviceID.
	Broker, MQTTPasswordFile string
	// ConsoleLink, if set, is a symbolic link made to the console's
	// pseudo-terminal, so a rig file can name a stable path.
	ConsoleLink string
	// Control is the control socket's path; default Dir/control.sock.
	Control string
	// SlotSize is the size of each slot file; default 4 MiB.
	SlotSize int64
	// FactoryVersion is the healthy image both slots hold at the first
	// start; default 1.0.0.
	FactoryVersion string
	// Tries is how many boots a trial of a new slot gets (the agent writes
	// it as bootlimit); default 1.
	Tries int
	// Watchdog is how long a hung kernel runs before the watchdog resets
	// the board; default 2s.
	Watchdog time.Duration
	// KernelDelay is how long the kernel takes to boot before it starts
	// the operating system; default 300ms. It gives a power cut "during
	// the first boot" a window that does not depend on the host's speed.
	KernelDelay time.Duration
	// Shell runs the operating system's init script and login shell;
	// default /bin/sh.
	Shell string
	// PowerOn powers the board on when Run starts; otherwise it waits for
	// an "on" on the control socket.
	PowerOn bool
	// Log receives the board's own messages (not the console's).
	Log *slog.Logger
}

func (c *Config) setDefaults() error {
	switch {
	case c.Dir == "":
		return errors.New("vboard: dir: set the directory that holds the board's state")
	case c.Agent == "":
		return errors.New("vboard: agent: set the path of the gitfleet-agent binary")
	case c.DeviceID == "" || c.DeviceType == "":
		return errors.New("vboard: device id and type: set both")
	}
	var err error
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return fmt.Errorf("vboard: dir: %w", err)
	}
	if c.Agent, err = filepath.Abs(c.Agent); err != nil {
		return fmt.Errorf("vboard: agent: %w", err)
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.Fleet, "hil")
	def(&c.Channel, "hil")
	def(&c.Control, filepath.Join(c.Dir, "control.sock"))
	def(&c.FactoryVersion, "1.0.0")
	def(&c.Shell, "/bin/sh")
	if c.SlotSize == 0 {
		c.SlotSize = 4 << 20
	}
	if c.Tries == 0 {
		c.Tries = 1
	}
	if c.Watchdog == 0 {
		c.Watchdog = 2 * time.Second
	}
	if c.KernelDelay == 0 {
		c.KernelDelay = 300 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// A Board is a virtual board: a pseudo-terminal as its serial console, a
// control socket for its power, and at each power-on the bootloader's
// boot-counting convention over a file environment, then the image of the
// slot it picked.
type Board struct {
	cfg Config
	log *slog.Logger

	console      *os.File // the console's master side
	consoleSlave *os.File // held so the master never reads EIO while no one listens
	consolePath  string
	control      net.Listener
	rebootFIFO   *os.File

	out      chan []byte // console output, written by one goroutine
	requests chan request
	reboots  chan struct{}

	osMu sync.Mutex
	osIn *os.File // the running system's terminal, for console input; nil if none
}

// A request is a power command from the control socket.
type request struct {
	cmd   string
	reply chan string
}

// New provisions cfg.Dir at the first start and creates the console and the
// control socket. The board is powered off until Run gets a power-on.
func New(cfg Config) (*Board, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	b := &Board{cfg: cfg, log: cfg.Log.With("device", cfg.DeviceID),
		out: make(chan []byte, 4096), requests: make(chan request), reboots: make(chan struct{}, 1)}
	if err := b.provision(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.closeFiles()
		}
	}()
	var err error
	if b.console, b.consolePath, err = openPTY(); err != nil {
		return nil, err
	}
	if b.consoleSlave, err = os.OpenFile(b.consolePath, os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("vboard: console: %w", err)
	}
	// A UART passes bytes as they are: no echo, no newline translation.
	if err := makeRaw(b.consoleSlave); err != nil {
		return nil, fmt.Errorf("vboard: console: %w", err)
	}
	if cfg.ConsoleLink != "" {
		os.Remove(cfg.ConsoleLink)
		if err := os.Symlink(b.consolePath, cfg.ConsoleLink); err != nil {
			return nil, fmt.Errorf("vboard: console link: %w", err)
		}
	}
	os.Remove(cfg.Control)
	if b.control, err = net.Listen("unix", cfg.Control); err != nil {
		return nil, fmt.Errorf("vboard: control socket: %w", err)
	}
	// O_RDWR keeps a writer open, so reads block rather than see EOF
	// between two reboot requests.
	if b.rebootFIFO, err = os.OpenFile(b.path("dev", "reboot"), os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("vboard: reboot pipe: %w", err)
	}
	ok = true
	return b, nil
}

// ConsolePath returns the path of the console's pseudo-terminal, which a
// serial library opens as it opens /dev/ttyUSB0.
func (b *Board) ConsolePath() string { return b.consolePath }

// ControlPath returns the path of the control socket.
func (b *Board) ControlPath() string { return b.cfg.Control }

func (b *Board) closeFiles() {
	if b.control != nil {
		b.control.Close()
		os.Remove(b.cfg.Control)
	}
	for _, f := range []*os.File{b.rebootFIFO, b.console, b.consoleSlave} {
		if f != nil {
			f.Close()
		}
	}
	if b.cfg.ConsoleLink != "" {
		os.Remove(b.cfg.ConsoleLink)
	}
}

// Run serves the board until ctx is done, then powers it off and closes
// the console and the control socket.
func (b *Board) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	stop := make(chan struct{})
	g.Go(func() error { b.writeConsole(stop); return nil })
	g.Go(func() error { b.readConsole(); return nil })
	g.Go(func() error { b.serveControl(gctx); return nil })
	g.Go(func() error { b.readReboots(); return nil })
	err := b.loop(gctx)
	// Closing the files ends the goroutines that read them.
	close(stop)
	b.closeFiles()
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// print writes a console line, as a UART does: if no one reads the
// console and its buffer is full, the line is lost rather than the board
// stalled.
func (b *Board) print(format string, args ...any) {
	b.emit([]byte(fmt.Sprintf(format, args...) + "\r\n"))
}

func (b *Board) emit(p []byte) {
	select {
	case b.out <- p:
	default:
	}
}

func (b *Board) writeConsole(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case p := <-b.out:
			b.console.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := b.console.Write(p); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}
}

// readConsole passes what is typed on the console to the running system's
// terminal; the bootloader ignores it.
func (b *Board) readConsole() {
	buf := make([]byte, 4096)
	for {
		n, err := b.console.Read(buf)
		if err != nil {
			return
		}
		b.osMu.Lock()
		if b.osIn != nil {
			b.osIn.Write(buf[:n])
		}
		b.osMu.Unlock()
	}
}

// readReboots turns lines written to Dir/dev/reboot, by the system's reboot
// command, into reboot requests.
func (b *Board) readReboots() {
	s := bufio.NewScanner(b.rebootFIFO)
	for s.Scan() {
		select {
		case b.reboots <- struct{}{}:
		default: // one is pending already
		}
	}
}

// serveControl answers the control socket: one command per line (on, off,
// reset, state), one reply per line ("ok on", "ok off" or "error ...").
func (b *Board) serveControl(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := b.control.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			s := bufio.NewScanner(c)
			for s.Scan() {
				r := request{cmd: s.Text(), reply: make(chan string, 1)}
				select {
				case b.requests <- r:
				case <-ctx.Done():
					return
				}
				if _, err := fmt.Fprintln(c, <-r.reply); err != nil {
					return
				}
			}
		}()
	}
}
