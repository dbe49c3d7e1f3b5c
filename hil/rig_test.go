package hil

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodRig = `bundles:
  listen: 0.0.0.0:8080
server:
  api: http://192.168.7.1:8081
  token_file: keys/api-token
  report_timeout: 1m
trust:
  root: keys/root.json
  key: keys/targets.key
boards:
  - name: rpi4
    device: {id: rpi4-lab-01, type: acme-rpi4}
    console: {port: /dev/ttyUSB0, baud: 115200}
    power:
      type: relay
      port: /dev/ttyUSB1
      baud: 9600
      on: "A0 01 01 A2"
      off: "A0 01 00 A1"
      off_time: 3s
    bundles_url: http://192.168.7.1:8080
    daemon: {stop: systemctl stop gitfleet-agent, start: systemctl start gitfleet-agent}
    timeouts: {boot: 2m}
  - name: bbb
    device: {id: bbb-lab-01, type: acme-bbb}
    console: {port: /dev/ttyUSB2}
    power: {type: command, on: uhubctl -a on, off: uhubctl -a off}
`

const virtualRig = `server: {embedded: {}}
boards:
  - name: vb
    device: {id: vb-1, type: gitfleet-vboard}
    virtual: {watchdog: 1s}
`

func TestParseRig(t *testing.T) {
	r, err := ParseRig("lab/rig.yaml", []byte(goodRig))
	if err != nil {
		t.Fatal(err)
	}
	b := r.Boards[0]
	if got, want := string(b.Power.OnBytes), "\xa0\x01\x01\xa2"; got != want {
		t.Errorf("relay on bytes: got % x, want % x", got, want)
	}
	if got, want := r.Trust.Root, "lab/keys/root.json"; got != want {
		t.Errorf("trust root: got %q, want %q (relative to the rig file)", got, want)
	}
	if b.BootTimeout.String() != "2m0s" || b.InstallTimeout != DefaultInstallTimeout || b.Power.OffTime.String() != "3s" {
		t.Errorf("timeouts: boot %s install %s off %s", b.BootTimeout, b.InstallTimeout, b.Power.OffTime)
	}
	if got, want := r.Server, (Server{API: "http://192.168.7.1:8081", TokenFile: "lab/keys/api-token", ReportTimeout: time.Minute}); got != want {
		t.Errorf("server: got %+v, want %+v", got, want)
	}
	if got, want := b.Daemon.Stop, "systemctl stop gitfleet-agent"; got != want {
		t.Errorf("daemon stop: got %q, want %q", got, want)
	}
	if got, want := r.Boards[1].Daemon, (Daemon{Stop: DefaultDaemonStop, Start: DefaultDaemonStart}); got != want {
		t.Errorf("default daemon: got %+v, want %+v", got, want)
	}

	r, err = ParseRig("rig.yaml", []byte(virtualRig))
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Boards[0]; v.Virtual == nil || v.Power.Type != "vboard" || v.Virtual.Watchdog.String() != "1s" {
		t.Errorf("virtual board: %+v", v)
	}
	if r.Server.Embedded == nil || r.Server.ReportTimeout != DefaultReportTimeout {
		t.Errorf("embedded server: %+v", r.Server)
	}
}

func TestRigErrorsNameLineAndField(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown field", "server: {embedded: {}}\nboards:\n  - name: a\n    colour: red\n", `rig.yaml:4: `},
		{"wrong type", "server: {embedded: {}}\nboards:\n  - name: a\n    console: {port: /dev/x, baud: fast}\n", `rig.yaml:4: boards[0].console.baud: want a whole number, got "fast"`},
		{"power type", "server: {api: http://s, token_file: t}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    console: {port: /dev/x}\n    power: {type: usb}\n", `rig.yaml:6: boards[0].power.type: "usb": want command, relay, modem or vboard`},
		{"missing power", "server: {api: http://s, token_file: t}\ntrust: {root: r, key: k}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    console: {port: /dev/x}\n", `rig.yaml:4: boards[0].power: set the power driver`},
		{"relay hex", "server: {api: http://s, token_file: t}\ntrust: {root: r, key: k}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    console: {port: /dev/x}\n    power: {type: relay, port: /dev/y, on: zz, off: '00'}\n", `rig.yaml:7: boards[0].power.on: "zz": want bytes in hex`},
		{"field the type does not use", "server: {api: http://s, token_file: t}\ntrust: {root: r, key: k}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    console: {port: /dev/x}\n    power: {type: vboard, socket: s, on: 'x'}\n", `rig.yaml:7: boards[0].power.on: not used by power type vboard`},
		{"duplicate name", "server: {embedded: {}}\nboards:\n  - {name: a, device: {id: a, type: t}, virtual: {}}\n  - {name: a, device: {id: b, type: t}, virtual: {}}\n", `rig.yaml:4: boards[1].name: "a": another board has this name`},
		{"bad duration", "server: {embedded: {}}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    virtual: {}\n    timeouts:\n      boot: soon\n", `rig.yaml:7: boards[0].timeouts.boot: "soon": want a positive duration`},
		{"bad prompt", "server: {embedded: {}}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    virtual: {}\n    prompt: '(['\n", `rig.yaml:6: boards[0].prompt: "([": error parsing regexp`},
		{"real board without trust", "server: {api: http://s, token_file: t}\nboards:\n  - name: a\n    device: {id: a, type: t}\n    console: {port: /dev/x}\n    power: {type: command, on: 'true', off: 'true'}\n", `rig.yaml:3: boards[0]: board a is not a virtual board the runner starts: set trust.root and trust.key`},
		{"no server", "boards:\n  - {name: a, device: {id: a, type: t}, virtual: {}}\n", `rig.yaml:1: server: set the gitfleet server the boards report to`},
		{"server without token", "server: {api: http://s}\nboards:\n  - {name: a, device: {id: a, type: t}, console: {port: p}, power: {type: vboard, socket: s}}\n", `rig.yaml:1: server.token_file: set the file`},
		{"embedded and api", "server: {api: http://s, embedded: {}}\nboards:\n  - {name: a, device: {id: a, type: t}, virtual: {}}\n", `rig.yaml:1: server.embedded: the runner starts this server`},
		{"embedded server, real board", "server: {embedded: {}}\nboards:\n  - {name: a, device: {id: a, type: t}, console: {port: p}, power: {type: vboard, socket: s}}\n", `rig.yaml:3: boards[0]: board a is not a virtual board the runner starts, so it cannot report to the server the runner starts`},
		{"existing server, virtual board", "server: {api: http://s, token_file: t}\nboards:\n  - {name: a, device: {id: a, type: t}, virtual: {}}\n", `rig.yaml:3: boards[0].virtual: a virtual board the runner starts reports to the server the runner starts`},
		{"syntax", "boards: [\n", `rig.yaml:1: `},
		{"two documents", "boards: []\n---\nboards: []\n", `rig.yaml:3: a second YAML document: want exactly one`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRig("rig.yaml", []byte(tc.yaml))
			var fe *FileError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

const goodPlan = `releases:
  - {version: 1.4.0, counter: 14, image: {kind: healthy, size: 512KiB}}
  - {version: 1.5.0, counter: 15, image: {kind: broken}}
  - {version: 2.0.0, counter: 20, image: {file: out/rootfs.ext4}}
scenarios:
  - {type: update, release: 1.4.0}
  - {type: broken-image, release: 1.5.0}
  - {name: cuts, type: power-cut-write, release: 1.4.0, repeat: 200, seed: 7}
`

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan("plans/plan.yaml", []byte(goodPlan))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Releases[0].Size; got != 512<<10 {
		t.Errorf("size: got %d, want %d", got, 512<<10)
	}
	if got := p.Releases[1].Size; got != DefaultImageSize {
		t.Errorf("default size: got %d, want %d", got, DefaultImageSize)
	}
	if got, want := p.Releases[2].File, "plans/out/rootfs.ext4"; got != want {
		t.Errorf("file: got %q, want %q", got, want)
	}
	if s := p.Scenarios[0]; s.Name != "update 1.4.0" || s.Repeat != 1 {
		t.Errorf("defaults: %+v", s)
	}
	if s := p.Scenarios[2]; s.Repeat != 200 || s.Seed != 7 {
		t.Errorf("repeat: %+v", s)
	}
}

func TestPlanErrorsNameLineAndField(t *testing.T) {
	rel := "releases:\n  - {version: 1.4.0, image: {kind: healthy}}\n  - {version: 1.5.0, image: {kind: broken}}\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown type", rel + "scenarios:\n  - {type: reboot, release: 1.4.0}\n", `plan.yaml:5: scenarios[0].type: "reboot": want one of`},
		{"unknown release", rel + "scenarios:\n  - {type: update, release: 9.9.9}\n", `plan.yaml:5: scenarios[0].release: "9.9.9": name a version listed under releases`},
		{"wrong kind", rel + "scenarios:\n  - {type: broken-image, release: 1.4.0}\n", `plan.yaml:5: scenarios[0].release: 1.4.0 is a healthy image: scenario broken-image needs a broken one`},
		{"bad version", "releases:\n  - {version: v1.4.0, image: {kind: healthy}}\nscenarios:\n  - {type: update, release: v1.4.0}\n", `plan.yaml:2: releases[0].version: "v1.4.0": want a semantic version without v`},
		{"bad kind", "releases:\n  - version: 1.4.0\n    image: {kind: sick}\nscenarios: []\n", `plan.yaml:3: releases[0].image.kind: "sick"`},
		{"bad size", "releases:\n  - version: 1.4.0\n    image:\n      kind: healthy\n      size: lots\nscenarios: []\n", `plan.yaml:5: releases[0].image.size: "lots": want a size`},
		{"no scenarios", rel, `plan.yaml:1: scenarios: list at least one scenario`},
		{"negative repeat", rel + "scenarios:\n  - type: update\n    release: 1.4.0\n    repeat: -1\n", `plan.yaml:7: scenarios[0].repeat: -1: want 1 to`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan("plan.yaml", []byte(tc.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}
