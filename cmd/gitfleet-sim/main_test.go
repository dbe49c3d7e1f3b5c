package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // "" means valid
	}{
		{name: "held devices only", args: []string{"--root", "root.json", "--devices", "10"}},
		{name: "rollout", args: []string{"--root", "r", "--server", "http://s", "--version", "1.0.0", "--release-cmd", "true", "--since", "1700000000.5"}},
		{name: "peer storm needs no server", args: []string{"--root", "r", "--storm", "3", "--peer"}},
		{name: "no root", args: nil, wantErr: "--root"},
		{name: "rollout without a server", args: []string{"--root", "r", "--version", "1.0.0"}, wantErr: "--server"},
		{name: "release command without a version", args: []string{"--root", "r", "--release-cmd", "true"}, wantErr: "--release-cmd"},
		{name: "peer without a storm", args: []string{"--root", "r", "--peer"}, wantErr: "--peer"},
		{name: "fail above 1", args: []string{"--root", "r", "--fail", "1.5"}, wantErr: "--fail"},
		{name: "negative installs", args: []string{"--root", "r", "--installs", "-1"}, wantErr: "--installs"},
		{name: "broker without scheme", args: []string{"--root", "r", "--broker", "127.0.0.1:1883"}, wantErr: "--broker"},
		{name: "bad output", args: []string{"--root", "r", "-o", "yaml"}, wantErr: "-o"},
		{name: "bad since", args: []string{"--root", "r", "--since", "yesterday"}, wantErr: "--since"},
		{name: "arguments", args: []string{"--root", "r", "extra"}, wantErr: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("parseFlags = %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("parseFlags = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestParseFlagsSince(t *testing.T) {
	c, err := parseFlags([]string{"--root", "r", "--since", "1700000000.25"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Since, time.Unix(1700000000, 250_000_000); !got.Equal(want) {
		t.Errorf("Since = %v, want %v", got, want)
	}
}

func TestHelp(t *testing.T) {
	if _, err := parseFlags([]string{"--help"}, io.Discard); err != errHelp {
		t.Errorf("parseFlags(--help) = %v, want errHelp", err)
	}
}
