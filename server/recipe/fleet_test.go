package recipe

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readExampleFleet(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFleetExample(t *testing.T) {
	got, err := ParseFleet(FleetFile, readExampleFleet(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &Fleet{
		Name: "acme",
		Channels: []Channel{
			{
				Name:    "staging",
				Release: "1.5.0-rc.1",
				Devices: Selector{IDs: []string{"gw-lab-01", "gw-lab-02"}, Labels: map[string]string{"ring": "canary"}},
				Policy:  Policy{Waves: []float64{100}, WaveDuration: 10 * time.Minute, MaxFailureRate: 0.2, MinConfirmed: 1},
			},
			{
				Name:    "production",
				Release: "1.4.0",
				Devices: Selector{DeviceTypes: []string{"acme-gw-v2", "acme-gw-v3"}},
				Policy:  Policy{Waves: []float64{1, 10, 50, 100}, WaveDuration: 24 * time.Hour, MaxFailureRate: 0.02, MinConfirmed: 5},
			},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Fleet{})); diff != "" {
		t.Errorf("ParseFleet: -want +got:\n%s", diff)
	}
	thresholds := []uint32{}
	p := got.Channel("production").Policy
	for i := range p.Waves {
		thresholds = append(thresholds, p.Threshold(i))
	}
	if diff := cmp.Diff([]uint32{100, 1000, 5000, 10000}, thresholds); diff != "" {
		t.Errorf("thresholds: -want +got:\n%s", diff)
	}
}

func TestChannelFor(t *testing.T) {
	fl, err := ParseFleet(FleetFile, readExampleFleet(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dev  Device
		want string
	}{
		{"listed id", Device{ID: "gw-lab-01", Type: "lab-board"}, "staging"},
		{"device type", Device{ID: "gw-9", Type: "acme-gw-v3"}, "production"},
		{"canary label wins by file order", Device{ID: "gw-8", Type: "acme-gw-v2", Labels: map[string]string{"ring": "canary"}}, "staging"},
		{"other label value", Device{ID: "gw-7", Type: "acme-gw-v2", Labels: map[string]string{"ring": "main"}}, "production"},
		{"nothing matches", Device{ID: "gw-6", Type: "acme-gw-v1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if c := fl.ChannelFor(tt.dev); c != nil {
				got = c.Name
			}
			if got != tt.want {
				t.Errorf("ChannelFor(%+v) = %q, want %q", tt.dev, got, tt.want)
			}
		})
	}

	// An id listed by a later channel beats a type match in an earlier one.
	fl, err = ParseFleet(FleetFile, []byte(`fleet: f
channels:
  all: {devices: {device_types: [t]}}
  pinned: {devices: {ids: [d1]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fl.ChannelFor(Device{ID: "d1", Type: "t"}); got == nil || got.Name != "pinned" {
		t.Errorf("ChannelFor(listed id) = %+v, want channel pinned", got)
	}
}

func TestSelectorMatches(t *testing.T) {
	tests := []struct {
		name string
		sel  Selector
		dev  Device
		want bool
	}{
		{"type", Selector{DeviceTypes: []string{"a", "b"}}, Device{ID: "x", Type: "b"}, true},
		{"other type", Selector{DeviceTypes: []string{"a"}}, Device{ID: "x", Type: "b"}, false},
		{"labels all", Selector{Labels: map[string]string{"k": "v", "l": "w"}}, Device{Labels: map[string]string{"k": "v", "l": "w", "m": "z"}}, true},
		{"labels some", Selector{Labels: map[string]string{"k": "v", "l": "w"}}, Device{Labels: map[string]string{"k": "v"}}, false},
		{"type and label", Selector{DeviceTypes: []string{"a"}, Labels: map[string]string{"k": "v"}}, Device{Type: "a", Labels: map[string]string{"k": "v"}}, true},
		{"type but not label", Selector{DeviceTypes: []string{"a"}, Labels: map[string]string{"k": "v"}}, Device{Type: "a"}, false},
		{"id only", Selector{IDs: []string{"x"}}, Device{ID: "x"}, true},
		{"id only, other device", Selector{IDs: []string{"x"}}, Device{ID: "y", Type: "a"}, false},
		{"id beats type", Selector{IDs: []string{"x"}, DeviceTypes: []string{"a"}}, Device{ID: "x", Type: "b"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.Matches(tt.dev); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

const minimalFleet = `fleet: f
channels:
  stable:
    release: v1.0.0
    devices:
      device_types: [t]
`

func TestParseFleetValues(t *testing.T) {
	replace := func(old, new string) string { return edit(minimalFleet, old, new) }
	tests := []struct {
		name string
		yaml string
		want func(c *Channel)
	}{
		{"default policy", minimalFleet, func(c *Channel) {}},
		{"version without v", replace("v1.0.0", "1.0.0"), func(c *Channel) {}},
		{"quoted", replace("v1.0.0", `"v1.0.0"`), func(c *Channel) {}},
		{"no release", replace("    release: v1.0.0\n", ""), func(c *Channel) { c.Release = "" }},
		{"null release", replace("v1.0.0", "~"), func(c *Channel) { c.Release = "" }},
		{"prerelease and build", replace("v1.0.0", "v2.0.0-rc.1+b5"), func(c *Channel) { c.Release = "2.0.0-rc.1+b5" }},
		{"null policy", minimalFleet + "    policy:\n", func(c *Channel) {}},
		{"partial policy", minimalFleet + "    policy: {waves: [0.5, 2.25, 100]}\n",
			func(c *Channel) { c.Policy.Waves = []float64{0.5, 2.25, 100} }},
		{"full policy", minimalFleet + "    policy:\n      waves: [10, 100]\n      wave_duration: 2h\n      max_failure_rate: 1\n      min_confirmed: 0\n",
			func(c *Channel) {
				c.Policy = Policy{Waves: []float64{10, 100}, WaveDuration: 2 * time.Hour, MaxFailureRate: 1, MinConfirmed: 0}
			}},
		{"labels and ids", replace("device_types: [t]", "labels: {site: Building 4}\n      ids: [dev-1]"),
			func(c *Channel) {
				c.Devices = Selector{Labels: map[string]string{"site": "Building 4"}, IDs: []string{"dev-1"}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl, err := ParseFleet(FleetFile, []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := Channel{Name: "stable", Release: "1.0.0", Devices: Selector{DeviceTypes: []string{"t"}}, Policy: DefaultPolicy}
			tt.want(&want)
			if diff := cmp.Diff([]Channel{want}, fl.Channels); diff != "" {
				t.Errorf("ParseFleet: -want +got:\n%s", diff)
			}
		})
	}
}

func TestParseFleetErrors(t *testing.T) {
	replace := func(old, new string) string { return edit(minimalFleet, old, new) }
	policy := func(p string) string { return minimalFleet + "    policy:\n      " + p + "\n" }
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"missing fleet", replace("fleet: f\n", ""), "fleet.yaml:1: fleet: missing"},
		{"bad fleet name", replace("fleet: f", "fleet: a/b"), `fleet.yaml:1: fleet: "a/b" contains '/'`},
		{"no channels", replace("channels:\n  stable:\n    release: v1.0.0\n    devices:\n      device_types: [t]\n", "channels: {}\n"),
			"fleet.yaml:2: channels: 0 channels: want 1 to 64"},
		{"channels list", "fleet: f\nchannels: [a]\n", "fleet.yaml:2: channels: want a mapping, got a list"},
		{"bad channel name", replace("stable:", "a+b:"), `fleet.yaml:3: channels.a+b: channel name: "a+b" contains '+'`},
		{"unknown channel field", replace("release: v1.0.0", "release: v1.0.0\n    relase: v2.0.0"),
			"fleet.yaml:5: channels.stable.relase: unknown field (want release, devices or policy)"},
		{"bad release", replace("v1.0.0", "v1.0"), `fleet.yaml:4: channels.stable.release: "v1.0": want a semantic version like v1.4.0 or v1.5.0-rc.1`},
		{"float release", replace("v1.0.0", "1.5"), `fleet.yaml:4: channels.stable.release: "1.5": want a semantic version like v1.4.0 or v1.5.0-rc.1`},
		{"leading zero", replace("v1.0.0", "v1.02.0"), `fleet.yaml:4: channels.stable.release: "v1.02.0": want a semantic version like v1.4.0 or v1.5.0-rc.1`},
		{"missing devices", replace("    devices:\n      device_types: [t]\n", ""), "fleet.yaml:3: channels.stable.devices: missing"},
		{"empty devices", replace("device_types: [t]", ""), "fleet.yaml:5: channels.stable.devices: select devices by device_types, ids or labels"},
		{"unknown selector", replace("device_types", "device_type"),
			"fleet.yaml:6: channels.stable.devices.device_type: unknown field (want device_types, ids or labels)"},
		{"bad device id", replace("device_types: [t]", "ids: [ok, 'a b']"), `fleet.yaml:6: channels.stable.devices.ids[1]: "a b" contains U+0020`},
		{"empty ids", replace("device_types: [t]", "ids: []"), "fleet.yaml:6: channels.stable.devices.ids: 0 ids: want 1 to 10000"},
		{"id twice", replace("device_types: [t]", "ids: [a, a]"), `fleet.yaml:6: channels.stable.devices.ids[1]: device "a" listed twice`},
		{"id in two channels", replace("device_types: [t]", "ids: [a]") + "  beta:\n    devices: {ids: [b, a]}\n",
			`fleet.yaml:8: channels.beta.devices.ids[1]: device "a" is already listed by channel stable`},
		{"bad label name", replace("device_types: [t]", "labels: {Site: x}"), "fleet.yaml:6: channels.stable.devices.labels.Site: label name: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 bytes"},
		{"empty label value", replace("device_types: [t]", "labels: {site: ''}"), "fleet.yaml:6: channels.stable.devices.labels.site: want a label value of 1 to 128 printable characters"},
		{"unknown policy field", policy("wave: [100]"),
			"fleet.yaml:8: channels.stable.policy.wave: unknown field (want waves, wave_duration, max_failure_rate, min_confirmed, penalty_after or retry_after)"},
		{"failure rate above 1", policy("max_failure_rate: 1.5"), "fleet.yaml:8: channels.stable.policy.max_failure_rate: 1.5 is not between 0 and 1"},
		{"failure rate negative", policy("max_failure_rate: -0.1"), "fleet.yaml:8: channels.stable.policy.max_failure_rate: -0.1 is not between 0 and 1"},
		{"failure rate percent", policy("max_failure_rate: 5%"), "fleet.yaml:8: channels.stable.policy.max_failure_rate: want a number, got a string"},
		{"failure rate hex", policy("max_failure_rate: 0x1"), "fleet.yaml:8: channels.stable.policy.max_failure_rate: 0x1: want a decimal number"},
		{"failure rate infinite", policy("max_failure_rate: .inf"), "fleet.yaml:8: channels.stable.policy.max_failure_rate: .inf: want a decimal number"},
		{"waves not ending at 100", policy("waves: [1, 10, 50]"), "fleet.yaml:8: channels.stable.policy.waves: last wave is 50%: want 100 so that the release reaches every device"},
		{"waves decreasing", policy("waves: [1, 10, 5, 100]"), "fleet.yaml:8: channels.stable.policy.waves[2]: 5% after 10%: want increasing percentages"},
		{"waves repeated", policy("waves: [10, 10, 100]"), "fleet.yaml:8: channels.stable.policy.waves[1]: 10% after 10%: want increasing percentages"},
		{"wave zero", policy("waves: [0, 100]"), "fleet.yaml:8: channels.stable.policy.waves[0]: 0% is not above 0 and at most 100"},
		{"wave above 100", policy("waves: [50, 150]"), "fleet.yaml:8: channels.stable.policy.waves[1]: 150% is not above 0 and at most 100"},
		{"wave too precise", policy("waves: [0.125, 100]"), "fleet.yaml:8: channels.stable.policy.waves[0]: 0.125%: want at most two decimals"},
		{"wave string", policy("waves: [ten, 100]"), "fleet.yaml:8: channels.stable.policy.waves[0]: want a number, got a string"},
		{"no waves", policy("waves: []"), "fleet.yaml:8: channels.stable.policy.waves: 0 waves: want 1 to 32"},
		{"waves multi-line", minimalFleet + "    policy:\n      waves:\n        - 10\n        - 5\n        - 100\n",
			"fleet.yaml:10: channels.stable.policy.waves[1]: 5% after 10%: want increasing percentages"},
		{"bad wave duration", policy("wave_duration: 1 day"), `fleet.yaml:8: channels.stable.policy.wave_duration: "1 day": want a duration such as 30m or 1h30m`},
		{"wave duration too long", policy("wave_duration: 2200h"), "fleet.yaml:8: channels.stable.policy.wave_duration: 2200h is not between 1s and 2160h"},
		{"min confirmed negative", policy("min_confirmed: -1"), "fleet.yaml:8: channels.stable.policy.min_confirmed: -1: want a whole number from 0 to 1000000"},
		{"min confirmed fraction", policy("min_confirmed: 1.5"), "fleet.yaml:8: channels.stable.policy.min_confirmed: want a whole number, got a number"},
		{"penalty after 0", policy("penalty_after: 0"), "fleet.yaml:8: channels.stable.policy.penalty_after: 0: want a whole number from 1 to 100"},
		{"penalty after too many", policy("penalty_after: 101"), "fleet.yaml:8: channels.stable.policy.penalty_after: 101: want a whole number from 1 to 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl, err := ParseFleet(FleetFile, []byte(tt.yaml))
			checkParseError(t, fl, err, tt.want)
		})
	}
}
