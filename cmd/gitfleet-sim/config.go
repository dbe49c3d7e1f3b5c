package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is gitfleet-sim's configuration, from flags.
type Config struct {
	Brokers                    []string
	Fleet, Channel, DeviceType string
	IDPrefix                   string
	Devices                    int
	Root                       string
	Fail                       float64
	SlotSize                   int64
	Dir                        string
	ConnectRate                float64
	KeepAlive, Heartbeat       time.Duration
	BootTime                   time.Duration
	Installs                   int

	// MQTTUser and MQTTPasswordFile are an account that may read $SYS and
	// the fleet's statuses: for the broker's client count and the sink.
	MQTTUser, MQTTPasswordFile string

	Server, TokenFile string
	ServerPID         int
	BrokerPID         int

	Version      string
	ReleaseCmd   string
	Since        time.Time
	WaveDuration time.Duration
	Storm        int
	Peer         bool
	Hold         time.Duration
	Timeout      time.Duration
	Output       string
	Quiet        bool
	PprofAddr    string
}

// Default returns the defaults of every flag.
func Default() Config {
	return Config{
		Brokers: []string{"tcp://127.0.0.1:1883"}, Fleet: "sim", Channel: "production", DeviceType: "sim-board",
		IDPrefix: "sim-", Devices: 1000, SlotSize: 1 << 20, ConnectRate: 2000,
		KeepAlive: time.Minute, Heartbeat: 5 * time.Minute, BootTime: 200 * time.Millisecond,
		Timeout: 10 * time.Minute, Output: "text",
	}
}

var errHelp = errors.New("help")

const usage = `usage: gitfleet-sim [flags]

Starts --devices simulated devices (the agent's link and update engine over
slots in memory) against --broker, then, in order and as asked:
  --version V   runs --release-cmd once every device is connected (the command
                that tags V), then follows the rollout of V on the server's
                --channel to its end (complete, halted or aborted), timed from
                the command's start, or from --since;
  --storm K     has every device publish K statuses and times their ingest:
                until the server's API shows the last (or, with --peer, until
                a bare subscriber has them all: the broker's limit);
  --hold D      keeps the devices connected D longer.
Progress goes to stderr; the results to stdout, as text or (-o json) JSON.

flags:
`

// parseFlags reads args over Default.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("gitfleet-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	brokers := strings.Join(c.Brokers, ",")
	fs.StringVar(&brokers, "broker", brokers, "MQTT broker `URLs`, comma-separated, taken by the devices in turn (several listeners let more than ~28k devices connect from one address)")
	fs.StringVar(&c.Fleet, "fleet", c.Fleet, "the devices' fleet")
	fs.StringVar(&c.Channel, "channel", c.Channel, "the channel the devices follow")
	fs.StringVar(&c.DeviceType, "device-type", c.DeviceType, "the devices' type")
	fs.StringVar(&c.IDPrefix, "id-prefix", c.IDPrefix, "device ids are this prefix and a number")
	fs.IntVar(&c.Devices, "devices", c.Devices, "how many devices")
	fs.StringVar(&c.Root, "root", c.Root, "the pinned root.json the devices trust (required)")
	fs.Float64Var(&c.Fail, "fail", c.Fail, "fraction of devices whose new release fails its health check, so they roll back")
	fs.Int64Var(&c.SlotSize, "slot-size", c.SlotSize, "bytes of each slot; memory is only what is written")
	fs.StringVar(&c.Dir, "data", c.Dir, "directory for the devices' journals (default: a new one under /dev/shm, removed at the end)")
	fs.Float64Var(&c.ConnectRate, "connect-rate", c.ConnectRate, "devices started per second")
	fs.DurationVar(&c.KeepAlive, "keep-alive", c.KeepAlive, "the devices' MQTT keep-alive")
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "how often each device publishes its status again")
	fs.DurationVar(&c.BootTime, "boot-time", c.BootTime, "how long a simulated reboot takes")
	fs.IntVar(&c.Installs, "installs", c.Installs, "engine runs at once, at most (0: 32 per CPU)")
	fs.StringVar(&c.MQTTUser, "mqtt-user", c.MQTTUser, "broker account that may read $SYS and the fleet's statuses (for the client count and --peer)")
	fs.StringVar(&c.MQTTPasswordFile, "mqtt-password-file", c.MQTTPasswordFile, "its password")
	fs.StringVar(&c.Server, "server", os.Getenv("GITFLEET_SERVER"), "gitfleet-server URL (env GITFLEET_SERVER)")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "file holding the API token (default: env GITFLEET_TOKEN)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "the server's process id, for its CPU and memory")
	fs.IntVar(&c.BrokerPID, "broker-pid", 0, "the broker's process id, for its CPU and memory")
	fs.StringVar(&c.Version, "version", "", "follow the rollout of this version to its end")
	fs.StringVar(&c.ReleaseCmd, "release-cmd", "", "shell command that releases --version (e.g. tags and pushes it), run once every device is connected")
	since := ""
	fs.StringVar(&since, "since", "", "when the release was tagged, Unix seconds (default: now)")
	fs.DurationVar(&c.WaveDuration, "wave-duration", 0, "the policy's wave_duration, subtracted per wave advance for the time excluding wave waits")
	fs.IntVar(&c.Storm, "storm", 0, "statuses each device publishes in the storm (0: no storm)")
	fs.BoolVar(&c.Peer, "peer", false, "storm into a bare subscriber instead of the server: the broker's limit")
	fs.DurationVar(&c.Hold, "hold", 0, "keep the devices connected this long at the end")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "give up after this long")
	fs.StringVar(&c.Output, "o", c.Output, "output: text or json")
	fs.BoolVar(&c.Quiet, "q", false, "no progress lines")
	fs.StringVar(&c.PprofAddr, "pprof", "", "serve net/http/pprof on this address (HOST:PORT), to profile the simulator itself")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q: see --help", fs.Args())
	}
	c.Brokers = strings.Split(brokers, ",")
	c.Since = time.Now()
	if since != "" {
		f, err := strconv.ParseFloat(since, 64)
		if err != nil {
			return c, fmt.Errorf("--since %q: want Unix seconds, e.g. $(date +%%s.%%N)", since)
		}
		// To the microsecond, which a float64 of Unix seconds still holds.
		c.Since = time.UnixMicro(int64(math.Round(f * 1e6)))
	}
	return c, c.Validate()
}

// Validate checks the configuration; errors name the flag and the fix.
func (c Config) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.Root == "" {
		bad("--root: name the root.json the devices trust (the server's keys/root.json)")
	}
	if c.Devices <= 0 {
		bad("--devices: want at least 1")
	}
	if c.Installs < 0 {
		bad("--installs %d: want 0 (32 per CPU) or more", c.Installs)
	}
	if c.Fail < 0 || c.Fail > 1 {
		bad("--fail %v: want a fraction from 0 to 1", c.Fail)
	}
	if c.Output != "text" && c.Output != "json" {
		bad("-o %q: use text or json", c.Output)
	}
	if (c.Version != "" || (c.Storm > 0 && !c.Peer)) && c.Server == "" {
		bad("--server: --version and --storm read the server's API: set its URL")
	}
	if c.ReleaseCmd != "" && c.Version == "" {
		bad("--release-cmd: give --version too: the version it releases")
	}
	if c.Peer && c.Storm == 0 {
		bad("--peer: give --storm K too")
	}
	for _, b := range c.Brokers {
		if !strings.HasPrefix(b, "tcp://") && !strings.HasPrefix(b, "mqtt://") {
			bad("--broker %q: want tcp://HOST:PORT", b)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// token returns the API token: the file's, else GITFLEET_TOKEN's.
func (c Config) token() (string, error) {
	if c.TokenFile == "" {
		return os.Getenv("GITFLEET_TOKEN"), nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// mqttPassword returns the observer account's password.
func (c Config) mqttPassword() (string, error) {
	if c.MQTTPasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.MQTTPasswordFile)
	if err != nil {
		return "", fmt.Errorf("--mqtt-password-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
