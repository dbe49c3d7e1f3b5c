package hil

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/hil/vboard"
)

// A Plan is a plan file, plan.yaml: the releases to make bundles of and the
// scenarios to run on every board of the rig, in order. README.md describes
// every field.
type Plan struct {
	Releases  []Release
	Scenarios []Scenario
}

// A Release is a release the runner bundles and signs: one rootfs image,
// either a virtual board image it makes or an image file.
type Release struct {
	Version string
	Counter uint64
	// Kind and Size describe a virtual board image (vboard.WriteImage);
	// File is an image file instead, for a real board.
	Kind vboard.Kind
	Size int64
	File string
}

// A Scenario is one step of a plan, run Repeat times on each board.
type Scenario struct {
	// Name names the JUnit test case; default "TYPE RELEASE".
	Name    string
	Type    string
	Release string
	// Repeat runs the scenario this many times (default 1), the i-th with
	// the seed Seed+i, which picks the point of a power cut.
	Repeat int
	Seed   uint64
}

// The scenario types.
const (
	// Update installs the release and expects a confirmed boot of it.
	Update = "update"
	// BadSignature installs the release signed by a key the board does not
	// trust, and expects a refusal that changes nothing.
	BadSignature = "bad-signature"
	// Downgrade installs a release whose counter is below the running
	// one's, and expects a refusal that changes nothing.
	Downgrade = "downgrade"
	// BrokenImage installs a release whose kernel never comes up, and
	// expects the bootloader to fall back by boot count and the agent to
	// report the rollback.
	BrokenImage = "broken-image"
	// HealthCheckFails installs a release whose health check fails, and
	// expects the agent to roll back and report it.
	HealthCheckFails = "health-check-fails"
	// PowerCutWrite cuts the power at a random byte of the download, while
	// the agent writes the slot, then expects the board to boot and end
	// the update cleanly: installed, or failed with the old release
	// running.
	PowerCutWrite = "power-cut-write"
	// PowerCutFirstBoot cuts the power as the new slot's kernel starts,
	// and expects the fallback by boot count and a reported rollback.
	PowerCutFirstBoot = "power-cut-first-boot"
)

var scenarioTypes = []string{Update, BadSignature, Downgrade, BrokenImage, HealthCheckFails, PowerCutWrite, PowerCutFirstBoot}

type planFile struct {
	Releases []struct {
		Version string `yaml:"version"`
		Counter uint64 `yaml:"counter"`
		Image   struct {
			Kind string `yaml:"kind"`
			Size string `yaml:"size"`
			File string `yaml:"file"`
		} `yaml:"image"`
	} `yaml:"releases"`
	Scenarios []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Release string `yaml:"release"`
		Repeat  int    `yaml:"repeat"`
		Seed    uint64 `yaml:"seed"`
	} `yaml:"scenarios"`
}

// DefaultImageSize is the size of a virtual board image that gives none.
const DefaultImageSize = 1 << 20

// maxRepeat bounds a scenario's repeats: more is a typo.
const maxRepeat = 100000

// LoadPlan reads and validates the plan file at path.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return ParsePlan(path, data)
}

// ParsePlan parses and validates a plan file; name is the file's path, for
// errors and relative paths. The error is a *FileError.
func ParsePlan(name string, data []byte) (*Plan, error) {
	var f planFile
	d := decode(name, data, &f)
	if err := d.Err(); err != nil {
		return nil, err
	}
	p := &Plan{}
	releases := map[string]Release{}
	for i, rf := range f.Releases {
		field := fmt.Sprintf("releases[%d]", i)
		r := Release{Version: rf.Version, Counter: rf.Counter, File: rf.Image.File}
		if err := bundle.CheckVersion(rf.Version); err != nil {
			d.bad(field+".version", "%q: want a semantic version without v, e.g. 1.4.0", rf.Version)
		} else if _, dup := releases[rf.Version]; dup {
			d.bad(field+".version", "%s: another release has this version", rf.Version)
		}
		switch {
		case rf.Image.File != "" && (rf.Image.Kind != "" || rf.Image.Size != ""):
			d.bad(field+".image", "give either file (an image file) or kind and size (a virtual board image), not both")
		case rf.Image.File != "":
			if !filepath.IsAbs(r.File) {
				r.File = filepath.Join(filepath.Dir(name), r.File)
			}
		default:
			k, err := vboard.ParseKind(rf.Image.Kind)
			if err != nil {
				d.bad(field+".image.kind", "%q: want healthy, broken or unhealthy, or give file", rf.Image.Kind)
			}
			r.Kind, r.Size = k, d.size(field+".image.size", rf.Image.Size)
			if r.Size == 0 {
				r.Size = DefaultImageSize
			}
			if r.Size <= vboard.HeaderSize {
				d.bad(field+".image.size", "%d: want more than %d bytes", r.Size, vboard.HeaderSize)
			}
		}
		releases[rf.Version] = r
		p.Releases = append(p.Releases, r)
	}
	if len(f.Scenarios) == 0 {
		d.bad("scenarios", "list at least one scenario")
	}
	for i, sf := range f.Scenarios {
		field := fmt.Sprintf("scenarios[%d]", i)
		s := Scenario{Name: sf.Name, Type: sf.Type, Release: sf.Release, Repeat: sf.Repeat, Seed: sf.Seed}
		if !contains(scenarioTypes, sf.Type) {
			d.bad(field+".type", "%q: want one of %v", sf.Type, scenarioTypes)
		}
		r, ok := releases[sf.Release]
		if !ok {
			d.bad(field+".release", "%q: name a version listed under releases", sf.Release)
		}
		switch want := map[string]vboard.Kind{Update: vboard.Healthy, BrokenImage: vboard.Broken, HealthCheckFails: vboard.Unhealthy,
			PowerCutWrite: vboard.Healthy, PowerCutFirstBoot: vboard.Healthy}[sf.Type]; {
		case ok && want != "" && r.File == "" && r.Kind != want:
			d.bad(field+".release", "%s is a %s image: scenario %s needs a %s one", sf.Release, r.Kind, sf.Type, want)
		}
		switch {
		case sf.Repeat < 0 || sf.Repeat > maxRepeat:
			d.bad(field+".repeat", "%d: want 1 to %d", sf.Repeat, maxRepeat)
		case sf.Repeat == 0:
			s.Repeat = 1
		}
		if s.Name == "" {
			s.Name = sf.Type + " " + sf.Release
		}
		p.Scenarios = append(p.Scenarios, s)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Find returns the release of version v.
func (p *Plan) Find(v string) (Release, bool) {
	for _, r := range p.Releases {
		if r.Version == v {
			return r, true
		}
	}
	return Release{}, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
