package recipe

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

func addSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkError checks what every parse error must be: an *Error naming the
// file, on one line.
func checkError(t *testing.T, err error) {
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v, want *Error", err, err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("error %q spans several lines", err)
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/gitfleet.yaml")
	f.Add([]byte(minimalRecipe))
	f.Add([]byte("product: &a p\ndevice_types: [*a]\n"))
	f.Add([]byte("build: {command: [a, 'b c', \"d\"]}\nimages: [{path: ../x}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(RecipeFile, data)
		if err != nil {
			checkError(t, err)
			return
		}
		if len(r.Images) == 0 || len(r.DeviceTypes) == 0 || r.Timeout <= 0 {
			t.Fatalf("Parse accepted an incomplete recipe: %+v", r)
		}
		if (r.Command.Argv == nil) == (r.Command.Shell == "") {
			t.Fatalf("command %+v: want exactly one form", r.Command)
		}
		for _, im := range r.Images {
			if !nameRE.MatchString(im.Name) || !nameRE.MatchString(im.Slot) || strings.HasPrefix(im.Path, "/") || strings.Contains(im.Path, "..") && strings.Contains("/"+im.Path+"/", "/../") {
				t.Fatalf("Parse accepted image %+v", im)
			}
		}
	})
}

// nameRE is the spelling of names, written independently of
// gitfleetv1.IsName, which Parse uses.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func FuzzParseFleet(f *testing.F) {
	addSeeds(f, "testdata/fleet.yaml")
	f.Add([]byte(minimalFleet))
	f.Add([]byte("fleet: f\nchannels:\n  a: {devices: {ids: [x]}}\n  b:\n    release: ~\n    devices: {labels: {k: v}}\n"))
	f.Add([]byte("fleet: f\r\nchannels:\r\n  a:\r\n    # c\r\n    devices: {device_types: [t]}\r\n    policy: {waves: [0.01, 99.99, 100]}\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := ParseFleet(FleetFile, data)
		if err != nil {
			checkError(t, err)
			return
		}
		for _, c := range fl.Channels {
			if w := c.Policy.Waves; len(w) == 0 || w[len(w)-1] != 100 || c.Policy.Threshold(len(w)-1) != 10000 {
				t.Fatalf("channel %s: waves %v accepted", c.Name, w)
			}
			// Promote either refuses or changes exactly one line, and what it
			// writes parses back with the new release (Promote checks that).
			out, err := fl.Promote(c.Name, "v99.0.0-fuzz")
			if err != nil {
				continue
			}
			if n := changedLines(string(data), string(out)); n != 1 {
				t.Fatalf("Promote %s changed %d lines:\n%s\n---\n%s", c.Name, n, data, out)
			}
		}
	})
}
