package hil

import (
	"strings"
	"testing"
)

// FuzzParseRig checks that any bytes give a rig or a one-line error, never
// a panic.
func FuzzParseRig(f *testing.F) {
	f.Add([]byte(goodRig))
	f.Add([]byte(virtualRig))
	f.Add([]byte("server: {api: http://s, token_file: t}\nboards:\n  - {name: a, device: {id: a, type: t}, virtual: {}}\n"))
	f.Add([]byte("boards: [\n"))
	f.Add([]byte("boards:\n  - power: {type: relay, on: 'A0 0', off: ''}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRig("rig.yaml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return
		}
		if len(r.Boards) == 0 {
			t.Error("a rig without boards was accepted")
		}
	})
}

// FuzzParsePlan checks that any bytes give a plan or a one-line error,
// never a panic.
func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(goodPlan))
	f.Add([]byte("releases:\n  - {version: 1.0.0, image: {kind: healthy, size: 1KiB}}\nscenarios:\n  - {type: update, release: 1.0.0, repeat: 3}\n"))
	f.Add([]byte("scenarios: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan("plan.yaml", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return
		}
		for _, s := range p.Scenarios {
			if _, ok := p.Find(s.Release); !ok || s.Repeat < 1 {
				t.Errorf("scenario %+v was accepted", s)
			}
		}
	})
}
