package hil

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/hil/console"
)

// A Rig is a rig file, rig.yaml: the boards, how to reach their consoles and
// power, the keys their trust roots pin, the gitfleet server they report
// to, and where the runner serves them bundles. README.md describes every
// field.
type Rig struct {
	// Bundles is the address of the runner's bundle server.
	Bundles string
	Server  Server
	// Trust is nil on a rig of virtual boards the runner starts, which get
	// throwaway keys.
	Trust  *Trust
	Boards []Board
}

// Server is the gitfleet server the boards report to: every scenario
// checks that its fleet status API says what the board's console says.
type Server struct {
	// API is the server's URL; TokenFile holds an API token with the read
	// scope. Both are empty when Embedded is set.
	API, TokenFile string
	// Embedded, if set, has the runner start a gitfleet-server on embedded
	// defaults for the run, and give the virtual boards it starts their
	// broker accounts.
	Embedded *Embedded
	// ReportTimeout bounds how long a board's report may take to show in
	// the API: the report travels through the board's outbox, the broker
	// and the server's ingest.
	ReportTimeout time.Duration
}

// Embedded is a gitfleet-server the runner starts.
type Embedded struct {
	// Binary is the gitfleet-server binary; default the one beside
	// gitfleet-hil, else on $PATH.
	Binary string
}

// DefaultReportTimeout is a rig's server.report_timeout when it gives none.
const DefaultReportTimeout = 30 * time.Second

// Trust is what signs the bundles the boards accept.
type Trust struct {
	// Root is the root.json the boards pin.
	Root string
	// Key is the targets key: a PEM file, env://VAR or a KMS URI.
	Key string
}

// A Board is one board of a rig.
type Board struct {
	Name       string
	DeviceID   string
	DeviceType string
	Console    console.Config
	Power      Power
	// Virtual is set for a virtual board the runner starts, whose console
	// and power it then knows.
	Virtual *Virtual
	// BundlesURL is the runner's bundle server as the board reaches it;
	// empty means the listen address.
	BundlesURL string
	// Daemon stops and starts the agent's daemon at the board's shell: an
	// install from the console needs the daemon stopped (it holds the
	// agent's data directory), and a refused one starts it again.
	Daemon Daemon
	// Prompt matches the shell's prompt; Banner the bootloader's first
	// line, which tells that the board (re)started.
	Prompt, Banner *regexp.Regexp
	// BootTimeout bounds a boot, from power-on to the prompt;
	// InstallTimeout an install; CommandTimeout any other command.
	// SettleTimeout is how long an update may stay in progress with
	// nothing happening before the runner power-cycles the board, as a
	// watchdog would, so that the agent resumes it.
	BootTimeout, InstallTimeout, CommandTimeout, SettleTimeout time.Duration
}

// Daemon holds the shell commands that stop and start a board's agent
// daemon, gitfleet-agent run.
type Daemon struct {
	Stop, Start string
}

// The default commands of a board's Daemon: what Debian (systemd or
// sysvinit) and the virtual board answer.
const (
	DefaultDaemonStop  = "service gitfleet-agent stop"
	DefaultDaemonStart = "service gitfleet-agent start"
)

// Power is a board's power driver.
type Power struct {
	// Type is command, relay, modem or vboard.
	Type string
	// On and Off are shell commands (command) or bytes (relay).
	OnCommand, OffCommand string
	OnBytes, OffBytes     []byte
	// Port is the relay's or modem's serial port.
	Port console.Config
	// Line is dtr or rts (modem); ActiveLow inverts it.
	Line      string
	ActiveLow bool
	// Socket is the virtual board's control socket (vboard).
	Socket string
	// OffTime is how long the power stays off in a power cycle, so that
	// capacitors drain; default 1s, 0 for a virtual board.
	OffTime time.Duration
	Timeout time.Duration
}

// Virtual configures a virtual board the runner starts.
type Virtual struct {
	// Agent is the gitfleet-agent binary; default the one beside
	// gitfleet-hil, else on $PATH.
	Agent    string
	Watchdog time.Duration
	SlotSize int64
}

// The default patterns and timeouts of a board.
const (
	DefaultPrompt      = `[#$] $`
	DefaultBanner      = `^U-Boot \d`
	DefaultBootTimeout = 60 * time.Second
	VirtualBootTimeout = 20 * time.Second
	// A virtual board's agent daemon resumes an update within a second of
	// its start; ten leave room for a loaded machine, and only a stuck
	// update waits them out.
	VirtualSettleTimeout  = 10 * time.Second
	DefaultInstallTimeout = 5 * time.Minute
	DefaultCommandTimeout = 60 * time.Second
)

// rigFile is rig.yaml as written.
type rigFile struct {
	Bundles struct {
		Listen string `yaml:"listen"`
	} `yaml:"bundles"`
	Server *struct {
		API           string `yaml:"api"`
		TokenFile     string `yaml:"token_file"`
		ReportTimeout string `yaml:"report_timeout"`
		Embedded      *struct {
			Binary string `yaml:"binary"`
		} `yaml:"embedded"`
	} `yaml:"server"`
	Trust *struct {
		Root string `yaml:"root"`
		Key  string `yaml:"key"`
	} `yaml:"trust"`
	Boards []boardFile `yaml:"boards"`
}

type boardFile struct {
	Name   string `yaml:"name"`
	Device struct {
		ID   string `yaml:"id"`
		Type string `yaml:"type"`
	} `yaml:"device"`
	Console    *console.Config `yaml:"console"`
	Power      *powerFile      `yaml:"power"`
	Virtual    *virtualFile    `yaml:"virtual"`
	BundlesURL string          `yaml:"bundles_url"`
	Daemon     struct {
		Stop  string `yaml:"stop"`
		Start string `yaml:"start"`
	} `yaml:"daemon"`
	Prompt   string `yaml:"prompt"`
	Banner   string `yaml:"banner"`
	Timeouts struct {
		Boot    string `yaml:"boot"`
		Install string `yaml:"install"`
		Command string `yaml:"command"`
		Settle  string `yaml:"settle"`
	} `yaml:"timeouts"`
}

type powerFile struct {
	Type      string `yaml:"type"`
	On        string `yaml:"on"`
	Off       string `yaml:"off"`
	Port      string `yaml:"port"`
	Baud      int    `yaml:"baud"`
	DataBits  int    `yaml:"data_bits"`
	Parity    string `yaml:"parity"`
	StopBits  string `yaml:"stop_bits"`
	Line      string `yaml:"line"`
	ActiveLow bool   `yaml:"active_low"`
	Socket    string `yaml:"socket"`
	OffTime   string `yaml:"off_time"`
	Timeout   string `yaml:"timeout"`
}

type virtualFile struct {
	Agent    string `yaml:"agent"`
	Watchdog string `yaml:"watchdog"`
	SlotSize string `yaml:"slot_size"`
}

// LoadRig reads and validates the rig file at path. Relative paths in it
// are relative to the file's directory.
func LoadRig(path string) (*Rig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rig: %w", err)
	}
	return ParseRig(path, data)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRig parses and validates a rig file; name is the file's path, for
// errors and relative paths. The error is a *FileError.
func ParseRig(name string, data []byte) (*Rig, error) {
	var f rigFile
	d := decode(name, data, &f)
	if err := d.Err(); err != nil {
		return nil, err
	}
	base := filepath.Dir(name)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
			return p
		}
		return filepath.Join(base, p)
	}
	r := &Rig{Bundles: f.Bundles.Listen}
	if r.Bundles == "" {
		r.Bundles = "127.0.0.1:0"
	}
	r.Server = d.server(f, abs)
	if f.Trust != nil {
		r.Trust = &Trust{Root: abs(f.Trust.Root), Key: abs(f.Trust.Key)}
		if f.Trust.Root == "" {
			d.bad("trust.root", "set the root.json the boards pin")
		}
		if f.Trust.Key == "" {
			d.bad("trust.key", "set the targets key that signs bundles (a PEM file, env://VAR or a KMS URI)")
		}
	}
	if len(f.Boards) == 0 {
		d.bad("boards", "list at least one board")
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for i, bf := range f.Boards {
		field := fmt.Sprintf("boards[%d]", i)
		b := Board{Name: bf.Name, DeviceID: bf.Device.ID, DeviceType: bf.Device.Type, BundlesURL: bf.BundlesURL,
			Daemon: Daemon{Stop: cmp.Or(bf.Daemon.Stop, DefaultDaemonStop), Start: cmp.Or(bf.Daemon.Start, DefaultDaemonStart)}}
		switch {
		case !nameRE.MatchString(bf.Name):
			d.bad(field+".name", "%q: name the board with letters, digits, '.', '_' or '-' (it names its logs)", bf.Name)
		case names[bf.Name]:
			d.bad(field+".name", "%q: another board has this name", bf.Name)
		}
		names[bf.Name] = true
		switch {
		case bf.Device.ID == "":
			d.bad(field+".device.id", "set the device id its agent.yaml has")
		case ids[bf.Device.ID]:
			d.bad(field+".device.id", "%q: another board has this id", bf.Device.ID)
		}
		ids[bf.Device.ID] = true
		if !deviceTypeRE.MatchString(bf.Device.Type) {
			d.bad(field+".device.type", "%q: set the device type its agent.yaml has (lowercase letters, digits, '.', '_' or '-')", bf.Device.Type)
		}
		if bf.Virtual != nil {
			if bf.Console != nil || bf.Power != nil {
				d.bad(field+".virtual", "a virtual board the runner starts has its own console and power: remove console and power")
			}
			b.Virtual = &Virtual{Agent: abs(bf.Virtual.Agent),
				Watchdog: d.duration(field+".virtual.watchdog", bf.Virtual.Watchdog, 0),
				SlotSize: d.size(field+".virtual.slot_size", bf.Virtual.SlotSize)}
			b.Power = Power{Type: "vboard"}
		} else {
			if bf.Console == nil || bf.Console.Port == "" {
				d.bad(field+".console.port", "set the serial port of the board's console (e.g. /dev/serial/by-id/usb-FTDI_…-if00-port0)")
			} else {
				b.Console = *bf.Console
				b.Console.Port = abs(b.Console.Port)
				if _, err := b.Console.Mode(); err != nil {
					k, msg, _ := strings.Cut(err.Error(), ": ")
					d.bad(field+".console."+k, "%s", msg)
				}
			}
			if bf.Power == nil {
				d.bad(field+".power", "set the power driver: type command, relay, modem or vboard")
			} else {
				b.Power = d.power(field+".power", *bf.Power, abs)
			}
		}
		if bf.BundlesURL != "" && !isHTTPURL(bf.BundlesURL) {
			d.bad(field+".bundles_url", "%q: want the runner's bundle server as the board reaches it, e.g. http://192.168.7.1:8080", bf.BundlesURL)
		}
		b.Prompt = d.regexp(field+".prompt", bf.Prompt, DefaultPrompt)
		b.Banner = d.regexp(field+".banner", bf.Banner, DefaultBanner)
		bootDefault, settleDefault := DefaultBootTimeout, time.Duration(0)
		if b.Virtual != nil {
			bootDefault, settleDefault = VirtualBootTimeout, VirtualSettleTimeout
		}
		b.BootTimeout = d.duration(field+".timeouts.boot", bf.Timeouts.Boot, bootDefault)
		if settleDefault == 0 {
			settleDefault = b.BootTimeout
		}
		b.SettleTimeout = d.duration(field+".timeouts.settle", bf.Timeouts.Settle, settleDefault)
		b.InstallTimeout = d.duration(field+".timeouts.install", bf.Timeouts.Install, DefaultInstallTimeout)
		b.CommandTimeout = d.duration(field+".timeouts.command", bf.Timeouts.Command, DefaultCommandTimeout)
		r.Boards = append(r.Boards, b)
	}
	// A server the runner starts knows the boards the runner starts, and
	// only those: a board started elsewhere needs its broker account first.
	for i, b := range r.Boards {
		if r.Server.Embedded != nil && b.Virtual == nil {
			d.bad(fmt.Sprintf("boards[%d]", i), "board %s is not a virtual board the runner starts, so it cannot report to the server the runner starts: name your server (server.api, server.token_file)", b.Name)
			break
		}
		if f.Server != nil && r.Server.Embedded == nil && b.Virtual != nil {
			d.bad(fmt.Sprintf("boards[%d].virtual", i), "a virtual board the runner starts reports to the server the runner starts: set server.embedded, or start the board with gitfleet-hil vboard --broker and name its console and power")
			break
		}
	}
	if r.Trust == nil {
		for i, b := range r.Boards {
			if b.Virtual == nil {
				d.bad(fmt.Sprintf("boards[%d]", i), "board %s is not a virtual board the runner starts: set trust.root and trust.key, the keys it trusts", b.Name)
				break
			}
		}
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

var deviceTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// server reads the server section: an existing server's API and token, or
// one the runner starts.
func (d doc) server(f rigFile, abs func(string) string) Server {
	if f.Server == nil {
		d.bad("server", "set the gitfleet server the boards report to: api and token_file, or embedded: {} for one the runner starts")
		return Server{}
	}
	sf := f.Server
	s := Server{API: sf.API, TokenFile: abs(sf.TokenFile),
		ReportTimeout: d.duration("server.report_timeout", sf.ReportTimeout, DefaultReportTimeout)}
	if sf.Embedded != nil {
		s.Embedded = &Embedded{Binary: abs(sf.Embedded.Binary)}
		if sf.API != "" || sf.TokenFile != "" {
			d.bad("server.embedded", "the runner starts this server and knows its API: remove api and token_file")
		}
		return s
	}
	if !isHTTPURL(sf.API) {
		d.bad("server.api", "%q: want the gitfleet server's URL as the runner reaches it, e.g. http://192.168.7.1:8080", sf.API)
	}
	if sf.TokenFile == "" {
		d.bad("server.token_file", "set the file that holds an API token with the read scope")
	}
	return s
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (d doc) power(field string, pf powerFile, abs func(string) string) Power {
	p := Power{Type: pf.Type, Line: pf.Line, ActiveLow: pf.ActiveLow,
		OffTime: d.duration(field+".off_time", pf.OffTime, time.Second),
		Timeout: d.duration(field+".timeout", pf.Timeout, 30*time.Second),
		Port:    console.Config{Port: abs(pf.Port), Baud: pf.Baud, DataBits: pf.DataBits, Parity: pf.Parity, StopBits: pf.StopBits}}
	// Fields that the type does not use are mistakes: say so rather than
	// ignore them.
	used := map[string]map[string]bool{
		"command": {"on": true, "off": true},
		"relay":   {"on": true, "off": true, "port": true, "serial": true},
		"modem":   {"port": true, "line": true},
		"vboard":  {"socket": true},
	}[pf.Type]
	set := map[string]bool{"on": pf.On != "", "off": pf.Off != "", "port": pf.Port != "", "line": pf.Line != "" || pf.ActiveLow,
		"socket": pf.Socket != "", "serial": pf.Baud != 0 || pf.DataBits != 0 || pf.Parity != "" || pf.StopBits != ""}
	if used == nil {
		d.bad(field+".type", "%q: want command, relay, modem or vboard", pf.Type)
		return p
	}
	for _, k := range []string{"on", "off", "port", "line", "socket", "serial"} {
		if set[k] && !used[k] {
			name := map[string]string{"line": "line", "serial": "baud"}[k]
			if name == "" {
				name = k
			}
			d.bad(field+"."+name, "not used by power type %s", pf.Type)
		}
	}
	need := func(k, what string) {
		if !set[k] {
			d.bad(field+"."+k, "power type %s needs %s", pf.Type, what)
		}
	}
	switch pf.Type {
	case "command":
		need("on", "the shell command that switches the power on, e.g. uhubctl -l 1-1 -p 2 -a on")
		need("off", "the shell command that switches the power off")
		p.OnCommand, p.OffCommand = pf.On, pf.Off
	case "relay":
		need("port", "the relay board's serial port")
		need("on", `the bytes that close the relay, in hex, e.g. "A0 01 01 A2"`)
		need("off", `the bytes that open the relay, in hex, e.g. "A0 01 00 A1"`)
		p.OnBytes = d.hexBytes(field+".on", pf.On)
		p.OffBytes = d.hexBytes(field+".off", pf.Off)
		if _, err := p.Port.Mode(); err != nil {
			k, msg, _ := strings.Cut(err.Error(), ": ")
			d.bad(field+"."+k, "%s", msg)
		}
	case "modem":
		need("port", "the serial port whose line drives the power")
		if pf.Line != "dtr" && pf.Line != "rts" {
			d.bad(field+".line", "%q: want dtr or rts", pf.Line)
		}
	case "vboard":
		need("socket", "the virtual board's control socket (gitfleet-hil vboard --control)")
		p.Socket = abs(pf.Socket)
		if pf.OffTime == "" {
			p.OffTime = 0
		}
	}
	return p
}

// hexBytes parses "A0 01 01 A2" (spaces optional).
func (d doc) hexBytes(field, s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil || len(b) == 0 {
		d.bad(field, "%q: want bytes in hex, e.g. \"A0 01 01 A2\"", s)
	}
	return b
}
