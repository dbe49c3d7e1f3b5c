package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/slot"
	"github.com/gitfleet/gitfleet/internal/yamlfile"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// Config is the agent's configuration, agent.yaml. Every field is
// documented in the example configuration, agent.example.yaml.
type Config struct {
	Device struct {
		ID      string `yaml:"id"`
		Type    string `yaml:"type"`
		Fleet   string `yaml:"fleet"`
		Channel string `yaml:"channel"`
		// Labels are reported in every status, for fleet.yaml's label
		// selectors.
		Labels map[string]string `yaml:"labels"`
	} `yaml:"device"`
	// DataDir holds the journal, the outbox and trust state.
	DataDir string `yaml:"data_dir"`
	Trust   struct {
		// Root is the pinned TUF root.json the device trusts.
		Root string `yaml:"root"`
	} `yaml:"trust"`
	Slots      slot.Config `yaml:"slots"`
	Bootloader Bootloader  `yaml:"bootloader"`
	Health     struct {
		// Manual leaves a new release waiting in the testing state for
		// `gitfleet-agent commit` or `rollback`.
		Manual   bool            `yaml:"manual"`
		Commands []HealthCommand `yaml:"commands"`
	} `yaml:"health"`
	System struct {
		BootIDFile    string   `yaml:"boot_id_file"`
		RebootCommand []string `yaml:"reboot_command"`
	} `yaml:"system"`
	MQTT MQTT `yaml:"mqtt"`
	// Fetch configures HTTPS downloads of bundles.
	Fetch struct {
		// CAFile is the PEM file of the CAs that sign the object store's
		// certificate; empty means the system's.
		CAFile string `yaml:"ca_file"`
		// CertFile and KeyFile, if set, are the device's client
		// certificate for servers that want mTLS.
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"fetch"`
}

// MQTT configures the link to the broker (gitfleet-agent run).
type MQTT struct {
	// Broker is tcp://HOST:PORT or ssl://HOST:PORT.
	Broker   string `yaml:"broker"`
	Username string `yaml:"username"`
	// PasswordFile holds the password; the environment variable
	// GITFLEET_MQTT_PASSWORD overrides it.
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`
	// CertFile and KeyFile are the device's client certificate for mTLS.
	CertFile  string        `yaml:"cert_file"`
	KeyFile   string        `yaml:"key_file"`
	Heartbeat time.Duration `yaml:"heartbeat"`
	KeepAlive time.Duration `yaml:"keep_alive"`
}

// Bootloader chooses and configures the bootloader backend.
type Bootloader struct {
	// Type is uboot, grub, file or script.
	Type string `yaml:"type"`
	// FwEnvConfig locates the U-Boot environment (uboot).
	FwEnvConfig string `yaml:"fw_env_config"`
	// GRUBEnv is the grubenv file (grub).
	GRUBEnv string `yaml:"grubenv"`
	// File is the variables file (file: the virtual board).
	File       string          `yaml:"file"`
	Convention boot.Convention `yaml:"convention"`
	Commands   boot.Commands   `yaml:"commands"`
}

// HealthCommand is one health check command.
type HealthCommand struct {
	Name    string        `yaml:"name"`
	Command []string      `yaml:"command"`
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfigPath is where the agent looks without --config.
const DefaultConfigPath = "/etc/gitfleet/agent.yaml"

// Default returns the configuration's defaults.
func Default() Config {
	var c Config
	c.DataDir = "/var/lib/gitfleet"
	c.Trust.Root = "/etc/gitfleet/root.json"
	c.Bootloader.Type = "uboot"
	return c
}

// LoadConfig reads path over Default. Unknown fields are errors, and every
// error names the file, line and field.
func LoadConfig(path string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	doc := yamlfile.Decode(path, data, &c)
	if doc.Err() == nil {
		// Checked here as well as in Validate for the line of the bad label.
		if field, err := c.labelProblem(); err != nil {
			doc.Fail(field, "%v", err)
		}
	}
	if err := doc.Err(); err != nil {
		return c, fmt.Errorf("config %w", err)
	}
	// Relative paths are relative to the config file, so a config and the
	// files it names can move together.
	base := filepath.Dir(path)
	for _, p := range []*string{&c.DataDir, &c.Trust.Root, &c.Bootloader.FwEnvConfig, &c.Bootloader.GRUBEnv, &c.Bootloader.File, &c.Slots.Cmdline, &c.System.BootIDFile,
		&c.MQTT.PasswordFile, &c.MQTT.CAFile, &c.MQTT.CertFile, &c.MQTT.KeyFile,
		&c.Fetch.CAFile, &c.Fetch.CertFile, &c.Fetch.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, g := range c.Slots.Groups {
		for class, p := range g {
			if p != "" && !filepath.IsAbs(p) {
				g[class] = filepath.Join(base, p)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// labelProblem returns the first label of device.labels, in name order,
// that the protocol refuses (gitfleetv1.CheckLabel), and why; or "" and nil.
func (c Config) labelProblem() (field string, err error) {
	labels := c.Device.Labels
	if len(labels) > gitfleetv1.MaxLabels {
		return "device.labels", fmt.Errorf("%d labels: want at most %d", len(labels), gitfleetv1.MaxLabels)
	}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		if err := gitfleetv1.CheckLabel(name, labels[name]); err != nil {
			field := "device.labels." + name
			if q := strconv.Quote(name); q != `"`+name+`"` {
				field = "device.labels[" + q + "]" // keeps the error one line
			}
			return field, err
		}
	}
	return "", nil
}

// Validate checks the configuration; each error names the field and the fix.
func (c Config) Validate() error {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if c.Device.ID == "" {
		bad("device.id", "set the device's id, e.g. its serial number")
	}
	if !gitfleetv1.IsName(c.Device.Type) {
		bad("device.type", "%q: set the device type the bundles list, in lowercase letters, digits, '.', '_' or '-'", c.Device.Type)
	}
	if field, err := c.labelProblem(); err != nil {
		bad(field, "%v", err)
	}
	if c.DataDir == "" {
		bad("data_dir", "set a directory on persistent storage, e.g. /var/lib/gitfleet")
	}
	if c.Trust.Root == "" {
		bad("trust.root", "set the path of the pinned root.json")
	}
	if err := c.Slots.Validate(); err != nil {
		bad("slots", "%v", err)
	}
	switch b := c.Bootloader; b.Type {
	case "uboot":
		if b.FwEnvConfig == "" {
			bad("bootloader.fw_env_config", "set the fw_env.config of the U-Boot environment (e.g. /etc/fw_env.config)")
		}
	case "grub":
		if b.GRUBEnv == "" {
			bad("bootloader.grubenv", "set the grubenv file (e.g. /boot/grub/grubenv, the one the grub.cfg's load_env reads)")
		}
	case "file":
		if b.File == "" {
			bad("bootloader.file", "set the variables file")
		}
	case "script":
		if err := b.Commands.Validate(); err != nil {
			bad("bootloader.commands", "%v", err)
		}
	default:
		bad("bootloader.type", "%q: use uboot, grub, file or script", b.Type)
	}
	if c.Bootloader.Type != "script" {
		if err := c.Bootloader.Convention.Validate(); err != nil {
			bad("bootloader.convention", "%v", err)
		}
	}
	if (c.Fetch.CertFile == "") != (c.Fetch.KeyFile == "") {
		bad("fetch", "set both cert_file and key_file for mTLS, or neither")
	}
	for i, h := range c.Health.Commands {
		if h.Name == "" || len(h.Command) == 0 {
			bad(fmt.Sprintf("health.commands[%d]", i), "give a name and a command (a list: program and arguments)")
		}
	}
	if len(problems) > 0 {
		// One line, every problem: a bad config is fixed in one go.
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
