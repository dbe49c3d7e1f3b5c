package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/server/api/apitest"
	"github.com/gitfleet/gitfleet/server/apiclient"
)

// remoteCLI runs the CLI against server s with token and returns its stdout
// and stderr, or its error.
func remoteCLI(t *testing.T, s *apitest.Server, token string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv(serverEnv, s.URL)
	t.Setenv(tokenEnv, token)
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// lines returns out's lines with runs of spaces made one, for comparing
// tables without their alignment.
func lines(out string) []string {
	var ls []string
	for l := range strings.Lines(out) {
		ls = append(ls, regexp.MustCompile(` {2,}`).ReplaceAllString(strings.TrimRight(l, " \n"), " | "))
	}
	return ls
}

// TestRemoteTables runs every command that talks to a server, for people.
func TestRemoteTables(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 40})
	d0, d5 := s.Devices[0], s.Devices[5]
	tests := []struct {
		name  string
		token string
		args  []string
		// want are lines of the output, spaces between columns made " | ";
		// wantErr is a line of stderr.
		want    []string
		wantErr string
	}{
		{name: "releases", args: []string{"releases"}, want: []string{
			"VERSION | TAG | BUILD | COMMIT | SIGNER | CREATED",
			"1.4.0 | v1.4.0 | succeeded | " + apitest.Commit("1.4.0")[:12] + " | SHA256:release-key | ",
			"- | v1.5.0-rc.1 | building | - | - | ",
		}},
		{name: "release show", args: []string{"release", "show", "1.4.0"}, want: []string{
			"Version: | 1.4.0", "Tag: | v1.4.0", "Commit: | " + apitest.Commit("1.4.0"), "Signer: | SHA256:release-key",
			"Device types: | rpi4, imx8", "Counter: | 14", "Bundle size: | 50331648 bytes (48.0 MiB)",
			"Object bundle: | bundles/1.4.0.gfb",
		}},
		{name: "release show failed", args: []string{"release", "show", "v1.4.1"}, want: []string{
			"Version: | -", "Build error: | recipe: make exited 2", "Build log: | logs/v1.4.1.txt",
		}},
		{name: "promote", token: apitest.ReleaseToken, args: []string{"promote", "v1.3.0", "--channel", "staging"}, want: []string{
			"promoted 1.3.0 to staging: commit 0000000000000000000000000000000000000001",
		}},
		{name: "rollout status", args: []string{"rollout", "status"}, want: []string{
			"CHANNEL | RELEASE | WAVE | STATE | UPDATED | REASON",
			"staging | 1.4.0 | 0 | HALTED | ",
		}},
		{name: "rollout status of a channel", args: []string{"rollout", "status", "--channel", "production"}, want: []string{
			"Channel: | production", "Release: | 1.4.0", "State: | ACTIVE", "Reason: | wave 1 started",
			"Devices: ", "CONDITION | STATUS | REASON | MESSAGE", "Ready | false | ", "Halted | false | ",
		}},
		{name: "rollout pause", token: apitest.AdminToken, args: []string{"rollout", "pause", "--channel", "canary", "--reason", "imx8 boot loops"}, want: []string{
			"canary: PAUSED at wave 3 of 1.4.0: paused by operator: imx8 boot loops",
		}},
		{name: "rollout resume", token: apitest.AdminToken, args: []string{"rollout", "resume", "--channel", "canary"}, want: []string{
			"canary: ACTIVE at wave 3 of 1.4.0: resumed by operator",
		}},
		{name: "rollout abort", token: apitest.AdminToken, args: []string{"rollout", "abort", "--channel", "staging"}, want: []string{
			"staging: ABORTED at wave 0 of 1.4.0: aborted by operator",
		}},
		{name: "devices", args: []string{"devices", "--limit", "3"}, want: []string{
			"ID | CHANNEL | VERSION | STATE | CONFIRMED | HEALTH | ONLINE | LAST SEEN",
			"dev-00000 | " + d0.Channel + " | " + d0.Version + " | ",
			"dev-00002 | ",
		}, wantErr: "more devices: add --after ZGV2LTAwMDAy"},
		{name: "device show", args: []string{"device", "show", "dev-00000", "--events", "3"}, want: []string{
			"Device: | dev-00000", "Commit: | " + d0.Commit, "Channel: | " + d0.Channel, "Labels: | ring=canary, site=plant-0",
			"TIME | SEQ | FROM | TO | VERSION | ERROR",
			"2026-03-01 12:29:00 | 30 | committed | idle | 1.4.0 | -",
			"2026-03-01 12:27:00 | 28 | writing | trial-boot | 1.4.0 | -",
		}},
		{name: "device clear-penalty", token: apitest.AdminToken, args: []string{"device", "clear-penalty", "dev-00001", "--release", "1.4.0", "--reason", "new flash"}, want: []string{
			"device dev-00001: failures to install 1.4.0 forgotten; the rollout offers it again",
		}},
		{name: "device show without events", args: []string{"device", "show", d5.ID, "--events", "0"}, want: []string{
			"Device: | " + d5.ID, "Version: | " + d5.Version, "Labels: | -",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			if token == "" {
				token = apitest.ReadToken
			}
			out, errOut, err := remoteCLI(t, s, token, tc.args...)
			if err != nil {
				t.Fatalf("gitfleet %s: %v", strings.Join(tc.args, " "), err)
			}
			got := lines(out)
			for _, want := range tc.want {
				if !slicesHasPrefix(got, want) {
					t.Errorf("output lacks a line starting %q:\n%s", want, out)
				}
			}
			if tc.wantErr != "" && !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tc.wantErr)
			}
			if tc.wantErr == "" && errOut != "" {
				t.Errorf("stderr %q, want none", errOut)
			}
		})
	}
}

func slicesHasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestRemoteDevicesFilters: the filter flags select what the API's filters
// do, and --all walks every page.
func TestRemoteDevicesFilters(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 120})
	var want []string
	for _, d := range s.Devices {
		if d.Channel == "production" && d.Online && !d.HealthOK {
			want = append(want, d.ID)
		}
	}
	var allIDs, labelled []string
	for _, d := range s.Devices {
		allIDs = append(allIDs, d.ID)
		if d.Labels["ring"] == "canary" && d.Labels["site"] == "plant-0" {
			labelled = append(labelled, d.ID)
		}
	}
	if len(labelled) == 0 {
		t.Fatal("no seeded device has the labels ring=canary and site=plant-0")
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"filters", []string{"--channel", "production", "--online", "true", "--health", "failing"}, want},
		{"labels", []string{"--label", "ring=canary", "--label", "site=plant-0", "--all"}, labelled},
		{"all pages", []string{"--all", "--limit", "7"}, allIDs},
		{"one page", []string{"--limit", "2"}, allIDs[:2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := remoteCLI(t, s, apitest.ReadToken, append([]string{"devices", "-o", "json"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var p apiclient.DevicePage
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				t.Fatalf("devices -o json: %v\n%s", err, out)
			}
			var got []string
			for _, d := range p.Devices {
				got = append(got, d.ID)
			}
			if !cmp.Equal(got, tc.want) {
				t.Errorf("devices %s:\n%s", strings.Join(tc.args, " "), cmp.Diff(tc.want, got))
			}
		})
	}
}

// TestRemoteJSON runs every command with -o json and decodes what it
// wrote.
func TestRemoteJSON(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 10})
	tests := []struct {
		name  string
		token string
		args  []string
		into  any
		check func(v any) bool
	}{
		{"releases", "", []string{"releases"}, &apiclient.ReleaseList{}, func(v any) bool { return len(v.(*apiclient.ReleaseList).Releases) == 4 }},
		{"release show", "", []string{"release", "show", "1.3.0"}, &apiclient.Release{}, func(v any) bool {
			r := v.(*apiclient.Release)
			return r.Provenance.Tag == "v1.3.0" && r.Bundle.Digest != ""
		}},
		{"promote", apitest.ReleaseToken, []string{"promote", "1.4.0", "--channel", "canary-2"}, &apiclient.Promotion{}, func(v any) bool {
			return v.(*apiclient.Promotion).Channel == "canary-2"
		}},
		{"rollout status", "", []string{"rollout", "status"}, &apiclient.ChannelList{}, func(v any) bool { return len(v.(*apiclient.ChannelList).Channels) == 3 }},
		{"rollout status of a channel", "", []string{"rollout", "status", "--channel", "staging"}, &apiclient.Channel{}, func(v any) bool {
			return v.(*apiclient.Channel).State == "HALTED"
		}},
		{"rollout pause", apitest.AdminToken, []string{"rollout", "pause", "--channel", "production"}, &apiclient.Channel{}, func(v any) bool {
			return v.(*apiclient.Channel).State == "PAUSED"
		}},
		{"devices", "", []string{"devices", "--limit", "4"}, &apiclient.DevicePage{}, func(v any) bool {
			p := v.(*apiclient.DevicePage)
			return len(p.Devices) == 4 && p.Next != ""
		}},
		{"device show", "", []string{"device", "show", "dev-00000"}, &deviceView{}, func(v any) bool {
			d := v.(*deviceView)
			return d.Device.ID == "dev-00000" && len(d.Events) == 10 && d.Events[0].Sequence == 30
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			if token == "" {
				token = apitest.ReadToken
			}
			out, _, err := remoteCLI(t, s, token, append(tc.args, "-o", "json")...)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.into); err != nil {
				t.Fatalf("decode %T: %v\n%s", tc.into, err, out)
			}
			if !tc.check(tc.into) {
				t.Errorf("unexpected %T:\n%s", tc.into, out)
			}
		})
	}
}

// TestRemoteErrors: a failure is one line naming the request and why.
func TestRemoteErrors(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	tests := []struct {
		name  string
		token string
		args  []string
		want  string // the whole error, with {server} standing for the server's URL
	}{
		{"no token", "", []string{"devices"},
			"GET {server}/api/v1/devices: 401 unauthorized: no bearer token: send Authorization: Bearer TOKEN (set $GITFLEET_TOKEN to an API token)"},
		{"unknown token", "guess", []string{"releases"}, "GET {server}/api/v1/releases: 401 unauthorized: unknown bearer token"},
		{"lacks scope", apitest.PromoteOnlyToken, []string{"devices", "--channel", "staging"},
			"GET {server}/api/v1/devices?channel=staging: 403 forbidden: token promote-only lacks scope read"},
		{"pause without admin", apitest.ReadToken, []string{"rollout", "pause", "--channel", "canary"},
			"POST {server}/api/v1/channels/canary/pause: 403 forbidden: token reader lacks scope admin"},
		{"pause twice", apitest.AdminToken, []string{"rollout", "resume", "--channel", "canary"},
			"POST {server}/api/v1/channels/canary/resume: 409 conflict: resume rollout of channel canary: resume a rollout that is ACTIVE: not allowed in this state"},
		{"unknown device", apitest.ReadToken, []string{"device", "show", "nope"}, "GET {server}/api/v1/devices/nope: 404 not_found: no device nope"},
		{"unbuilt release", apitest.ReleaseToken, []string{"promote", "1.5.0-rc.1", "--channel", "canary"},
			"POST {server}/api/v1/channels/canary/promote: 404 not_found: no built release 1.5.0-rc.1"},
		{"no channel", apitest.ReleaseToken, []string{"promote", "1.4.0"}, "--channel: name the channel to promote 1.4.0 to"},
		{"no channel to pause", apitest.AdminToken, []string{"rollout", "pause"}, "--channel: name the channel whose rollout to pause"},
		{"clear-penalty without a release", apitest.AdminToken, []string{"device", "clear-penalty", "dev-00000"},
			"--release: name the release whose failures to forget, e.g. 1.5.0"},
		{"clear-penalty of an unknown release", apitest.AdminToken, []string{"device", "clear-penalty", "dev-00000", "--release", "9.9.9"},
			"POST {server}/api/v1/devices/dev-00000/clear-penalty: 404 not_found: no release 9.9.9"},
		{"bad filter", apitest.ReadToken, []string{"devices", "--online", "yes"}, `query parameter online="yes": use true or false`},
		{"bad label", apitest.ReadToken, []string{"devices", "--label", "ring"}, `query parameter label="ring": give NAME=VALUE`},
		{"bad output", apitest.ReadToken, []string{"releases", "-o", "yaml"}, `--output "yaml": use table or json`},
		{"bad server", apitest.ReadToken, []string{"releases", "--server", "localhost:8080"},
			`--server or $GITFLEET_SERVER: server URL "localhost:8080": want http://HOST[:PORT] or https://HOST[:PORT]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := remoteCLI(t, s, tc.token, tc.args...)
			want := strings.ReplaceAll(tc.want, "{server}", s.URL)
			if err == nil || err.Error() != want {
				t.Errorf("gitfleet %s:\nerr  %v\nwant %s", strings.Join(tc.args, " "), err, want)
			}
		})
	}
}

// TestRemoteServerFlag: --server wins over $GITFLEET_SERVER.
func TestRemoteServerFlag(t *testing.T) {
	s := apitest.New(t, apitest.Options{Devices: 1})
	t.Setenv(serverEnv, "http://127.0.0.1:1")
	t.Setenv(tokenEnv, apitest.ReadToken)
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"releases", "--server", s.URL, "-o", "json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"v1.4.0"`) {
		t.Errorf("releases from --server: %s", out.String())
	}
}
