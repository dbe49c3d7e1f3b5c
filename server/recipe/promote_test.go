package recipe

import (
	"errors"
	"strings"
	"testing"
)

func TestPromote(t *testing.T) {
	example := string(readExampleFleet(t))
	tests := []struct {
		name     string
		in       string
		channel  string
		version  string
		old, new string // the one change: in with old replaced by new
	}{
		{"example", example, "production", "v1.5.0",
			"release: v1.4.0 # promoted", "release: v1.5.0 # promoted"},
		{"version without v keeps the v", example, "production", "1.5.0",
			"release: v1.4.0 #", "release: v1.5.0 #"},
		{"prerelease to staging", example, "staging", "v1.5.0-rc.2",
			"release: v1.5.0-rc.1", "release: v1.5.0-rc.2"},
		{"file without v", strings.Replace(minimalFleet, "v1.0.0", "1.0.0", 1), "stable", "v2.0.0",
			"release: 1.0.0", "release: 2.0.0"},
		{"double quotes", strings.Replace(minimalFleet, "v1.0.0", `"v1.0.0"`, 1), "stable", "2.0.0",
			`release: "v1.0.0"`, `release: "v2.0.0"`},
		{"single quotes", strings.Replace(minimalFleet, "v1.0.0", `'v1.0.0'`, 1), "stable", "2.0.0",
			`release: 'v1.0.0'`, `release: 'v2.0.0'`},
		{"empty release", strings.Replace(minimalFleet, " v1.0.0", "", 1), "stable", "2.0.0",
			"release:\n", "release: v2.0.0\n"},
		{"tilde with comment", strings.Replace(minimalFleet, "v1.0.0", "~  # none yet", 1), "stable", "2.0.0",
			"release: ~  #", "release: v2.0.0  #"},
		{"null", strings.Replace(minimalFleet, "v1.0.0", "null", 1), "stable", "2.0.0",
			"release: null", "release: v2.0.0"},
		{"no release line", strings.Replace(minimalFleet, "    release: v1.0.0\n", "    # who follows\n", 1), "stable", "2.0.0",
			"    # who follows\n", "    # who follows\n    release: v2.0.0\n"},
		{"no release line, CRLF", strings.ReplaceAll(strings.Replace(minimalFleet, "    release: v1.0.0\n", "", 1), "\n", "\r\n"), "stable", "2.0.0",
			"  stable:\r\n", "  stable:\r\n    release: v2.0.0\r\n"},
		{"flow channel", "fleet: f\nchannels:\n  stable: {release: v1.0.0, devices: {ids: [a]}}\n", "stable", "1.1.0",
			"{release: v1.0.0,", "{release: v1.1.0,"},
		{"flow channel without release", "fleet: f\nchannels:\n  stable: {devices: {ids: [a]}}\n", "stable", "1.1.0",
			"{devices", "{release: v1.1.0, devices"},
		{"second channel of the same release", "fleet: f\nchannels:\n  a:\n    release: v1.0.0\n    devices: {ids: [x]}\n  b:\n    release: v1.0.0\n    devices: {ids: [y]}\n",
			"b", "1.1.0", "  b:\n    release: v1.0.0", "  b:\n    release: v1.1.0"},
		{"channel called release", "fleet: f\nchannels:\n  release:\n    devices: {ids: [x]}\n    release: v1.0.0\n", "release", "1.1.0",
			"    release: v1.0.0", "    release: v1.1.0"},
		{"non-ASCII before a flow value", "fleet: f\nchannels:\n  é: {devices: {labels: {site: Zürich}}, release: v1.0.0}\n", "é", "1.1.0",
			"release: v1.0.0}", "release: v1.1.0}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl, err := ParseFleet(FleetFile, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(tt.in, tt.old) != 1 {
				t.Fatalf("test case: %q is not once in the input", tt.old)
			}
			out, err := fl.Promote(tt.channel, tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(out), strings.Replace(tt.in, tt.old, tt.new, 1); got != want {
				t.Errorf("Promote:\n got: %q\nwant: %q", got, want)
			}
			if got, want := changedLines(tt.in, string(out)), 1; got != want {
				t.Errorf("Promote changed %d lines, want %d", got, want)
			}
			if got := string(fl.Bytes()); got != tt.in {
				t.Errorf("Promote changed the fleet's own bytes")
			}
		})
	}
}

// changedLines counts the lines a line diff of a and b shows as removed or
// added, when b is a with lines replaced or inserted in place.
func changedLines(a, b string) int {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	j := 0
	for j < len(al)-i && j < len(bl)-i && al[len(al)-1-j] == bl[len(bl)-1-j] {
		j++
	}
	return max(len(al)-i-j, len(bl)-i-j)
}

func TestPromoteErrors(t *testing.T) {
	fl, err := ParseFleet(FleetFile, readExampleFleet(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		channel, version string
		want             error
		msg              string
	}{
		{"unknown channel", "beta", "v1.5.0", ErrUnknownChannel, "promote v1.5.0 to beta: unknown channel"},
		{"same release", "production", "v1.4.0", ErrUnchanged, "promote v1.4.0 to production: channel already runs the release"},
		{"same release without v", "production", "1.4.0", ErrUnchanged, "promote 1.4.0 to production: channel already runs the release"},
		{"bad version", "production", "latest", nil, `promote to production: "latest": want a semantic version like v1.4.0 or v1.5.0-rc.1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := fl.Promote(tt.channel, tt.version)
			if err == nil {
				t.Fatalf("Promote = %q, want error", out)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Promote error %v, want %v", err, tt.want)
			}
			if got := err.Error(); got != tt.msg {
				t.Errorf("Promote error\n got: %s\nwant: %s", got, tt.msg)
			}
		})
	}
}
