package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

// The environment of the commands that talk to a server.
const (
	serverEnv = "GITFLEET_SERVER"
	tokenEnv  = "GITFLEET_TOKEN"
	// defaultServer is where gitfleet-server listens with no config.
	defaultServer = "http://127.0.0.1:8080"
)

// remote is the flags of a command that talks to a server: --server and
// the output format.
type remote struct {
	server string
	output
}

func (r *remote) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.server, "server", "", "the server's URL (default $"+serverEnv+", else "+defaultServer+")")
	r.output.register(cmd)
}

// client returns a client of the server, with the token in $GITFLEET_TOKEN.
func (r *remote) client() (*client, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	server := r.server
	if server == "" {
		server = os.Getenv(serverEnv)
	}
	if server == "" {
		server = defaultServer
	}
	token := os.Getenv(tokenEnv)
	c, err := apiclient.New(server, token, nil)
	if err != nil {
		return nil, fmt.Errorf("--server or $%s: %w", serverEnv, err)
	}
	return &client{Client: c, token: token != ""}, nil
}

// client is an API client whose errors say what to do about a missing
// token.
type client struct {
	*apiclient.Client
	token bool
}

// check returns err, adding a hint when the server wanted a token and
// none was given.
func (c *client) check(err error) error {
	var ae *apiclient.Error
	if !c.token && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return fmt.Errorf("%w (set $%s to an API token)", err, tokenEnv)
	}
	return err
}

// newRemoteCommands returns the commands that talk to a server: releases,
// release, promote, rollout, devices and device.
func newRemoteCommands() []*cobra.Command {
	return []*cobra.Command{
		newReleasesCommand(), newReleaseCommand(), newPromoteCommand(),
		newRolloutCommand(), newDevicesCommand(), newDeviceCommand(),
	}
}

// when formats a time for a table: UTC to the second, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// short returns a commit id's first 12 digits, "-" for none.
func short(commit string) string {
	if commit == "" {
		return "-"
	}
	return commit[:min(12, len(commit))]
}

// orDash returns s, or "-" if it is empty, so that a table's columns stay
// apart.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine keeps a message from breaking a table's row.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
