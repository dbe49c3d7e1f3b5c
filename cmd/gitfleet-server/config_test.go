package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitAuthConfig checks the repository credentials: an ssh:// URL needs
// a key and known_hosts, a secret never sits in the URL, and each error
// names its field and the fix on one line.
func TestGitAuthConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" for valid
	}{
		{"ssh with key and known_hosts", func(c *Config) {
			c.Git.URL = "ssh://git@git.example/fw.git"
			c.Git.Auth.SSHKeyFile, c.Git.Auth.KnownHosts = "/k", "/kh"
		}, ""},
		{"ssh without a key", func(c *Config) {
			c.Git.URL, c.Git.Auth.KnownHosts = "ssh://git@git.example/fw.git", "/kh"
		}, "git.auth.ssh_key_file: an ssh:// repository needs the server's private key file"},
		{"ssh without known_hosts", func(c *Config) {
			c.Git.URL, c.Git.Auth.SSHKeyFile = "ssh://git@git.example/fw.git", "/k"
		}, "git.auth.known_hosts: an ssh:// repository needs a known_hosts file"},
		{"token in the URL", func(c *Config) {
			c.Git.URL = "https://ci:s3cret@git.example/fw.git"
		}, "git.url: it holds a password: put the token in git.auth.password_file"},
		{"ssh key for https", func(c *Config) {
			c.Git.URL, c.Git.Auth.SSHKeyFile = "https://git.example/fw.git", "/k"
		}, "git.auth: ssh_key_file and known_hosts are for ssh:// URLs, not https://"},
		{"https with a token file", func(c *Config) {
			c.Git.URL, c.Git.Auth.PasswordFile = "https://git.example/fw.git", "/token"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			c.fill()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want it to say %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

// TestGitAuthReadsFiles checks the credentials are read from the files
// git.auth names, and a missing file is named.
func TestGitAuthReadsFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Default()
	c.Git.Auth.PasswordFile = write("token", "tok-123\n")
	c.Git.Auth.CAFile = write("ca.pem", "CA PEM")
	c.Git.Auth.SSHKeyFile = write("id", "KEY PEM")
	c.Git.Auth.KnownHosts = filepath.Join(dir, "known_hosts")
	a, err := gitAuth(c)
	if err != nil {
		t.Fatal(err)
	}
	if a.Password != "tok-123" || a.Username == "" || !bytes.Equal(a.CABundle, []byte("CA PEM")) ||
		!bytes.Equal(a.SSHKey, []byte("KEY PEM")) || a.KnownHosts != c.Git.Auth.KnownHosts {
		t.Errorf("auth = %+v", a)
	}
	c.Git.Auth.SSHKeyFile = filepath.Join(dir, "missing")
	if _, err := gitAuth(c); err == nil || !strings.HasPrefix(err.Error(), "git.auth.ssh_key_file: ") {
		t.Errorf("missing key file: err = %v, want it named", err)
	}
}

// TestEmbeddedTLSConfig checks that the embedded broker's TLS listener
// needs its address, certificate and key together, naming what is missing.
func TestEmbeddedTLSConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" for valid
	}{
		{"mutual TLS", func(c *Config) {
			tls := &c.MQTT.Embedded.TLS
			tls.Listen, tls.CertFile, tls.KeyFile, tls.ClientCAFile = "0.0.0.0:8883", "/c.pem", "/c.key", "/ca.pem"
		}, ""},
		{"no key", func(c *Config) {
			c.MQTT.Embedded.TLS.Listen, c.MQTT.Embedded.TLS.CertFile = "0.0.0.0:8883", "/c.pem"
		}, "mqtt.embedded.tls.key_file: the TLS listener needs the key of its certificate"},
		{"no certificate", func(c *Config) {
			c.MQTT.Embedded.TLS.Listen, c.MQTT.Embedded.TLS.KeyFile = "0.0.0.0:8883", "/c.key"
		}, "mqtt.embedded.tls.cert_file: the TLS listener needs the broker's certificate"},
		{"files without a listener", func(c *Config) {
			c.MQTT.Embedded.TLS.ClientCAFile = "/ca.pem"
		}, "mqtt.embedded.tls.listen: set HOST:PORT of the TLS listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			c.fill()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
