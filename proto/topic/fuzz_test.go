package topic

import (
	"strings"
	"testing"
)

// FuzzParseTopic checks that Parse never panics, that its errors are one line,
// and that every name it accepts is one Name would build.
func FuzzParseTopic(f *testing.F) {
	for _, seed := range []string{
		"gitfleet/v1/acme/channels/production",
		"gitfleet/v1/acme/devices/dev-1/desired",
		"gitfleet/v1/acme/devices/dev-1/status",
		"gitfleet/v1/acme/devices/dev-1/events",
		"gitfleet/v1/acme/devices/+/status",
		"gitfleet/v2/acme/channels/beta",
		"gitfleet/v1/acme/devices/dev-1/status/extra",
		"gitfleet/v1/\xff/channels/\x00",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := Parse(name)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("Parse(%q) error %q is not one line", name, err)
			}
			return
		}
		built, err := got.Name()
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose Name fails: %v", name, got, err)
		}
		if built != name {
			t.Fatalf("Parse(%q) = %+v, whose Name is %q", name, got, built)
		}
	})
}

// FuzzBuildTopic checks that every topic built from IDs that pass CheckID
// parses back to the same IDs, whatever bytes the IDs hold.
func FuzzBuildTopic(f *testing.F) {
	f.Add("acme", "dev-1")
	f.Add("acme", "a/b")
	f.Add("ä", "%u")
	f.Add("$SYS", "..")
	f.Fuzz(func(t *testing.T, fleet, id string) {
		for _, kind := range []Kind{KindChannel, KindDesired, KindStatus, KindEvents} {
			want := Topic{Kind: kind, Fleet: fleet}
			if kind == KindChannel {
				want.Channel = id
			} else {
				want.Device = id
			}
			name, err := want.Name()
			if wantOK := CheckID(fleet) == nil && CheckID(id) == nil; (err == nil) != wantOK {
				t.Fatalf("%+v.Name() error = %v, want error: %t", want, err, !wantOK)
			}
			if err != nil {
				continue
			}
			got, err := Parse(name)
			if err != nil {
				t.Fatalf("Parse(%q) of a built topic: %v", name, err)
			}
			if got != want {
				t.Fatalf("Parse(%q) = %+v, want %+v", name, got, want)
			}
		}
	})
}
