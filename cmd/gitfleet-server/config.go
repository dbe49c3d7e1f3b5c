package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/gitfleet/gitfleet/server/objects"
)

// Config is the server's configuration, server.yaml. With no file at all
// the server runs on embedded defaults: an embedded MQTT broker, SQLite
// and a local object directory under DataDir, the API on 127.0.0.1:8080.
type Config struct {
	// Fleet is the fleet this server runs; default the name in fleet.yaml,
	// which the server then waits for before it starts MQTT, or "demo"
	// without a repository.
	Fleet string `yaml:"fleet"`
	// DataDir holds the database, objects, keys and Git cache of the
	// embedded defaults.
	DataDir string `yaml:"data_dir"`
	HTTP    struct {
		Listen string `yaml:"listen"`
		// PublicURL is where devices reach this server (object URLs).
		PublicURL string `yaml:"public_url"`
	} `yaml:"http"`
	// Database is a DSN: sqlite:PATH or postgres://…; empty means
	// sqlite:DATA_DIR/fleet.db.
	Database string `yaml:"database"`
	Objects  struct {
		// S3, when its endpoint is set, replaces the local object directory.
		S3 objects.S3Config `yaml:"s3"`
	} `yaml:"objects"`
	MQTT struct {
		// Embedded is the broker the server runs itself, unless External
		// names another.
		Embedded struct {
			Listen string `yaml:"listen"`
			// TLS is an optional TLS listener (PEM files). With
			// ClientCAFile it is mutual TLS: a device proves its id with
			// a client certificate whose common name is the id, as the
			// Mosquitto ACL of mosquitto-acl reads it
			// (use_identity_as_username); without, devices sign in with
			// their password over TLS.
			TLS struct {
				Listen       string `yaml:"listen"`
				CertFile     string `yaml:"cert_file"`
				KeyFile      string `yaml:"key_file"`
				ClientCAFile string `yaml:"client_ca_file"`
			} `yaml:"tls"`
		} `yaml:"embedded"`
		External struct {
			Broker       string `yaml:"broker"`
			Username     string `yaml:"username"`
			PasswordFile string `yaml:"password_file"`
			CAFile       string `yaml:"ca_file"`
			CertFile     string `yaml:"cert_file"`
			KeyFile      string `yaml:"key_file"`
		} `yaml:"external"`
	} `yaml:"mqtt"`
	Git struct {
		// URL is the firmware repository; empty runs no watcher.
		URL    string        `yaml:"url"`
		Branch string        `yaml:"branch"`
		Poll   time.Duration `yaml:"poll"`
		// Signatures is the tag signature policy: method off, openpgp or
		// ssh, with the keys file (armored keyring or allowed signers).
		Signatures struct {
			Method string `yaml:"method"`
			Keys   string `yaml:"keys"`
		} `yaml:"signatures"`
		WebhookSecretFile string `yaml:"webhook_secret_file"`
		// Auth is how the server authenticates to the repository: a
		// token (password_file) for https://, a key and the server's host
		// key for ssh://. Secrets live in files, never in the URL, which
		// goes into every bundle's signed provenance.
		Auth struct {
			Username     string `yaml:"username"`
			PasswordFile string `yaml:"password_file"`
			CAFile       string `yaml:"ca_file"`
			SSHKeyFile   string `yaml:"ssh_key_file"`
			SSHUser      string `yaml:"ssh_user"`
			KnownHosts   string `yaml:"known_hosts"`
		} `yaml:"auth"`
	} `yaml:"git"`
	Keys struct {
		// Root is the pinned root.json devices trust.
		Root string `yaml:"root"`
		// Targets sign bundles; Timestamp signs channel states. Each is a
		// file, env://VAR or a KMS URI.
		Targets   []string `yaml:"targets"`
		Timestamp []string `yaml:"timestamp"`
	} `yaml:"keys"`
	API struct {
		TokensFile string `yaml:"tokens_file"`
	} `yaml:"api"`
	// Replica names this server in build claims; default the host name.
	Replica string `yaml:"replica"`
}

// Default returns the embedded defaults.
func Default() Config {
	var c Config
	c.DataDir = "gitfleet-data"
	c.HTTP.Listen = "127.0.0.1:8080"
	c.MQTT.Embedded.Listen = "127.0.0.1:1883"
	c.Git.Branch = "main"
	c.Git.Poll = 30 * time.Second
	c.Git.Signatures.Method = "off"
	return c
}

// LoadConfig reads path over Default; "" means no file: embedded defaults.
func LoadConfig(path string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
			return c, fmt.Errorf("config %s: %s", path, strings.Join(strings.Fields(yaml.FormatError(err, false, false)), " "))
		}
	}
	c.fill()
	if err := c.Validate(); err != nil {
		if path == "" {
			path = "(defaults)"
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// fill derives the defaults that depend on other fields.
func (c *Config) fill() {
	if c.HTTP.PublicURL == "" {
		c.HTTP.PublicURL = "http://" + c.HTTP.Listen
	}
	if c.Database == "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "fleet.db")
	}
	if c.Keys.Root == "" {
		c.Keys.Root = filepath.Join(c.DataDir, "keys", "root.json")
	}
	if c.Replica == "" {
		c.Replica, _ = os.Hostname()
	}
}

// Validate checks the configuration; errors name the field and the fix.
func (c Config) Validate() error {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		bad("data_dir", "set a directory for the server's data")
	}
	if c.HTTP.Listen == "" {
		bad("http.listen", "set HOST:PORT, e.g. 127.0.0.1:8080")
	}
	if !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		bad("database", "%q: use sqlite:PATH or postgres://…", c.Database)
	}
	switch c.Git.Signatures.Method {
	case "off", "":
	case "openpgp", "ssh":
		if c.Git.Signatures.Keys == "" {
			bad("git.signatures.keys", "set the keyring (openpgp) or allowed signers file (ssh)")
		}
	default:
		bad("git.signatures.method", "%q: use off, openpgp or ssh", c.Git.Signatures.Method)
	}
	if u, err := url.Parse(c.Git.URL); c.Git.URL != "" && err != nil {
		bad("git.url", "%v", err)
	} else if c.Git.URL != "" {
		if _, set := u.User.Password(); set {
			bad("git.url", "it holds a password: put the token in git.auth.password_file (the URL goes into every bundle's provenance)")
		}
		a := c.Git.Auth
		switch u.Scheme {
		case "ssh":
			if a.SSHKeyFile == "" {
				bad("git.auth.ssh_key_file", "an ssh:// repository needs the server's private key file")
			}
			if a.KnownHosts == "" {
				bad("git.auth.known_hosts", "an ssh:// repository needs a known_hosts file listing its host key (no trust on first use)")
			}
		case "http", "https":
			if a.SSHKeyFile != "" || a.KnownHosts != "" {
				bad("git.auth", "ssh_key_file and known_hosts are for ssh:// URLs, not %s://", u.Scheme)
			}
		}
	}
	if t := c.MQTT.Embedded.TLS; t.Listen != "" {
		if t.CertFile == "" {
			bad("mqtt.embedded.tls.cert_file", "the TLS listener needs the broker's certificate (PEM)")
		}
		if t.KeyFile == "" {
			bad("mqtt.embedded.tls.key_file", "the TLS listener needs the key of its certificate (PEM)")
		}
	} else if t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" {
		bad("mqtt.embedded.tls.listen", "set HOST:PORT of the TLS listener, e.g. 0.0.0.0:8883, or drop its files")
	}
	if c.Objects.S3.Endpoint != "" {
		if err := c.Objects.S3.Validate(); err != nil {
			bad("objects.s3", "%v", err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
