package recipe

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// FleetFile is the name of the fleet file at the root of the main branch.
const FleetFile = "fleet.yaml"

// Limits on a fleet file.
const (
	// MaxChannels bounds the channels of a fleet.
	MaxChannels = 64
	// MaxWaves bounds the waves of a rollout policy.
	MaxWaves = 32
	// MaxWaveDuration bounds a wave's duration: longer is a typo.
	MaxWaveDuration = 90 * 24 * time.Hour
	maxSelectorIDs  = 10000
	maxMinConfirmed = 1000000
	maxPenaltyAfter = 100
)

// DefaultPolicy is the rollout policy of a channel whose fleet.yaml entry
// leaves out policy or some of its fields: every device at once, halting at
// the first failed update.
var DefaultPolicy = Policy{
	Waves:          []float64{100},
	WaveDuration:   time.Hour,
	MaxFailureRate: 0,
	MinConfirmed:   1,
}

// A Fleet is fleet.yaml: the channels of a fleet, the release each one runs,
// which devices follow it and how a new release rolls out to them.
// FORMAT.md beside this file describes the file.
type Fleet struct {
	// Name is the fleet's name, which MQTT topics carry.
	Name string
	// Channels are in file order.
	Channels []Channel

	// file and src are what the fleet was parsed from, kept for Promote.
	file string
	src  []byte
}

// A Channel is a named stream of releases.
type Channel struct {
	Name string
	// Release is the version the channel runs, without a leading "v" as in
	// bundle manifests ("1.4.0"); "" when nothing was promoted to it yet.
	// The file may spell it as the tag, "v1.4.0", or as the version.
	Release string
	Devices Selector
	Policy  Policy
}

// A Selector says which devices follow a channel: the devices listed in IDs,
// and the devices whose type is one of DeviceTypes (when given) and that
// carry every label in Labels (when given). At least one of the three is
// set.
type Selector struct {
	DeviceTypes []string
	IDs         []string
	Labels      map[string]string
}

// A Device is what a Selector looks at.
type Device struct {
	ID     string
	Type   string
	Labels map[string]string
}

// Matches reports whether the selector selects dev.
func (s Selector) Matches(dev Device) bool {
	if slices.Contains(s.IDs, dev.ID) {
		return true
	}
	if s.DeviceTypes == nil && s.Labels == nil {
		return false
	}
	if s.DeviceTypes != nil && !slices.Contains(s.DeviceTypes, dev.Type) {
		return false
	}
	for k, v := range s.Labels {
		if got, ok := dev.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// A Policy is how a release rolls out to a channel's devices: in waves, each
// reaching a growing percentage of the devices. The next wave starts when
// the current one has run for WaveDuration and at least MinConfirmed of its
// devices confirmed a healthy boot; the rollout halts when more than
// MaxFailureRate of the devices that tried the release failed.
type Policy struct {
	// Waves are cumulative percentages of the channel's devices, strictly
	// increasing and ending at 100, with at most two decimals: [1, 10, 50, 100].
	Waves          []float64
	WaveDuration   time.Duration
	MaxFailureRate float64
	MinConfirmed   int
	// PenaltyAfter is how many failures of a release put a device in the
	// penalty box, RetryAfter how long after a failure below it the device
	// is ordered to try again; zero means the rollout engine's defaults.
	PenaltyAfter int
	RetryAfter   time.Duration
}

// Threshold returns the wave bucket threshold of wave i in basis points,
// as the protocol's Wave message carries it: 10000 is every device.
func (p Policy) Threshold(i int) uint32 {
	return uint32(math.Round(p.Waves[i] * 100))
}

// Channel returns the channel called name, or nil.
func (fl *Fleet) Channel(name string) *Channel {
	for i := range fl.Channels {
		if fl.Channels[i].Name == name {
			return &fl.Channels[i]
		}
	}
	return nil
}

// ChannelFor returns the channel dev follows, or nil. A channel that lists
// dev's id wins; otherwise the first channel, in file order, whose selector
// matches dev.
func (fl *Fleet) ChannelFor(dev Device) *Channel {
	for i := range fl.Channels {
		if slices.Contains(fl.Channels[i].Devices.IDs, dev.ID) {
			return &fl.Channels[i]
		}
	}
	for i := range fl.Channels {
		if fl.Channels[i].Devices.Matches(dev) {
			return &fl.Channels[i]
		}
	}
	return nil
}

// ParseFleet parses and validates a fleet file. name is the file name used
// in errors, normally FleetFile; errors are *Error. The fleet keeps data for
// Promote.
func ParseFleet(name string, data []byte) (*Fleet, error) {
	d := &decoder{file: name}
	root := d.parse(data)
	if root == nil {
		return nil, d.err
	}
	fl := &Fleet{file: name, src: slices.Clone(data)}
	d.mapping(field{node: root, line: line(root)},
		spec{"fleet", true, func(f field) { fl.Name = d.id(f) }},
		spec{"channels", true, func(f field) { fl.Channels = d.channels(f) }},
	)
	if d.err != nil {
		return nil, d.err
	}
	return fl, nil
}

// LoadFleet reads and parses FleetFile in dir.
func LoadFleet(dir string) (*Fleet, error) {
	data, err := readFile(filepath.Join(dir, FleetFile))
	if err != nil {
		return nil, err
	}
	return ParseFleet(FleetFile, data)
}

// Bytes returns the file the fleet was parsed from.
func (fl *Fleet) Bytes() []byte { return slices.Clone(fl.src) }

// id decodes a fleet, channel or device name: an MQTT topic level.
func (d *decoder) id(f field) string {
	s, ok := d.scalar(f)
	if !ok {
		d.fail(f, "want a name, got null")
	} else if err := topic.CheckID(s); err != nil {
		d.fail(f, "%v", err)
	}
	return s
}

func (d *decoder) channels(f field) []Channel {
	var out []Channel
	ids := make(map[string]string) // device id → channel listing it
	d.entries(f, func(name string, v field) {
		if err := topic.CheckID(name); err != nil {
			d.fail(v, "channel name: %v", err)
		}
		c := Channel{Name: name, Policy: DefaultPolicy}
		d.mapping(v,
			spec{"release", false, func(f field) { c.Release = d.release(f) }},
			spec{"devices", true, func(f field) { c.Devices = d.selector(f, name, ids) }},
			spec{"policy", false, func(f field) { c.Policy = d.policy(f) }},
		)
		out = append(out, c)
	})
	if d.err == nil && (len(out) == 0 || len(out) > MaxChannels) {
		d.fail(f, "%d channels: want 1 to %d", len(out), MaxChannels)
	}
	return out
}

// release decodes a release: a version or the tag naming it. Null is no
// release yet.
func (d *decoder) release(f field) string {
	s, ok := d.scalar(f)
	if !ok {
		return ""
	}
	v, err := ParseRelease(s)
	if err != nil {
		d.fail(f, "%v", err)
	}
	return v
}

// ParseRelease returns the version that s, a version ("1.4.0") or a tag
// ("v1.4.0"), names.
func ParseRelease(s string) (string, error) {
	v := strings.TrimPrefix(s, "v")
	if err := bundle.CheckVersion(v); err != nil {
		return "", fmt.Errorf("%q: want a semantic version like v1.4.0 or v1.5.0-rc.1", s)
	}
	return v, nil
}

func (d *decoder) selector(f field, channel string, ids map[string]string) Selector {
	var s Selector
	d.mapping(f,
		spec{"device_types", false, func(f field) { s.DeviceTypes = d.names(f, maxDeviceTypes) }},
		spec{"ids", false, func(f field) {
			d.sequence(f, func(i int, v field) {
				id := d.id(v)
				if other, ok := ids[id]; ok && d.err == nil {
					if other == channel {
						d.fail(v, "device %q listed twice", id)
					} else {
						d.fail(v, "device %q is already listed by channel %s", id, other)
					}
				}
				ids[id] = channel
				s.IDs = append(s.IDs, id)
			})
			if d.err == nil && (len(s.IDs) == 0 || len(s.IDs) > maxSelectorIDs) {
				d.fail(f, "%d ids: want 1 to %d", len(s.IDs), maxSelectorIDs)
			}
		}},
		spec{"labels", false, func(f field) { s.Labels = d.labels(f) }},
	)
	if d.err == nil && s.DeviceTypes == nil && s.IDs == nil && s.Labels == nil {
		d.fail(f, "select devices by device_types, ids or labels")
	}
	return s
}

func (d *decoder) labels(f field) map[string]string {
	m := make(map[string]string)
	d.entries(f, func(k string, v field) {
		s := d.str(v) // null is "", which CheckLabel refuses
		// Devices report labels under the same rules, so that a selector
		// can match every label a device may carry.
		if err := gitfleetv1.CheckLabel(k, s); err != nil {
			d.fail(v, "%v", err)
		}
		m[k] = s
	})
	if d.err == nil && (len(m) == 0 || len(m) > gitfleetv1.MaxLabels) {
		d.fail(f, "%d labels: want 1 to %d", len(m), gitfleetv1.MaxLabels)
	}
	return m
}

func (d *decoder) policy(f field) Policy {
	p := DefaultPolicy
	d.mapping(f,
		spec{"waves", false, func(f field) { p.Waves = d.waves(f) }},
		spec{"wave_duration", false, func(f field) { p.WaveDuration, _ = d.duration(f, time.Second, MaxWaveDuration) }},
		spec{"max_failure_rate", false, func(f field) {
			if v, ok := d.number(f); ok && (v < 0 || v > 1) {
				d.fail(f, "%s is not between 0 and 1", d.str(f))
			} else {
				p.MaxFailureRate = v
			}
		}},
		spec{"min_confirmed", false, func(f field) { p.MinConfirmed, _ = d.integer(f, 0, maxMinConfirmed) }},
		spec{"penalty_after", false, func(f field) { p.PenaltyAfter, _ = d.integer(f, 1, maxPenaltyAfter) }},
		spec{"retry_after", false, func(f field) { p.RetryAfter, _ = d.duration(f, time.Second, MaxWaveDuration) }},
	)
	return p
}

// waves decodes wave percentages: 0 < w <= 100 in basis points (two
// decimals), strictly increasing, the last 100.
func (d *decoder) waves(f field) []float64 {
	var out []float64
	d.sequence(f, func(i int, v field) {
		w, ok := d.number(v)
		switch {
		case !ok:
		case w <= 0 || w > 100:
			d.fail(v, "%s%% is not above 0 and at most 100", d.str(v))
		case math.Abs(w*100-math.Round(w*100)) > 1e-6:
			d.fail(v, "%s%%: want at most two decimals", d.str(v))
		case len(out) > 0 && w <= out[len(out)-1]:
			d.fail(v, "%s%% after %g%%: want increasing percentages", d.str(v), out[len(out)-1])
		}
		out = append(out, w)
	})
	switch {
	case d.err != nil:
	case len(out) == 0 || len(out) > MaxWaves:
		d.fail(f, "%d waves: want 1 to %d", len(out), MaxWaves)
	case out[len(out)-1] != 100:
		d.fail(f, "last wave is %g%%: want 100 so that the release reaches every device", out[len(out)-1])
	}
	return out
}

// Errors a caller of Promote decides on.
var (
	// ErrUnknownChannel: the fleet has no channel of that name.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrUnchanged: the channel already runs that release; there is nothing
	// to commit.
	ErrUnchanged = errors.New("channel already runs the release")
)
