package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // Vars.String(), or the error
	}{
		{"empty", "", ""},
		{"lines", "gitfleet_slot=A\nbootcount=0\n", "gitfleet_slot=A\nbootcount=0\n"},
		{"no final newline", "a=1", "a=1\n"},
		{"comments and blank lines", "# board env\n\na=1\n\n#b=2\n", "a=1\n"},
		{"'=' in the value, empty value", "cmd=setenv x=1\nempty=\n", "cmd=setenv x=1\nempty=\n"},
		{"last duplicate wins in place", "a=1\nb=2\na=3\n", "a=3\nb=2\n"},
		{"carriage return kept", "a=1\r\n", "a=1\r\n"},
		{"line without '='", "a=1\nbroken\n", `line 2: no '=' in "broken"`},
		{"empty name", "=1\n", "line 1:"},
		{"NUL", "a=\x00\n", "line 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseFile([]byte(tt.in))
			var got string
			if err != nil {
				got = err.Error()
			} else {
				got = v.String()
			}
			if !strings.HasPrefix(got, tt.want) || (err == nil && got != tt.want) {
				t.Errorf("parseFile(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMarshalFileRefusesWhatItCannotStore(t *testing.T) {
	tests := []struct{ name, value string }{
		{"#comment", "1"},
		{"script", "echo one\necho two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := new(bootenv.Vars)
			if err := v.Set(tt.name, tt.value); err != nil {
				t.Fatal(err)
			}
			f := &File{Path: filepath.Join(t.TempDir(), "env")}
			if err := f.Write(v); err == nil || !strings.Contains(err.Error(), tt.name) {
				t.Errorf("Write(%s=%q) = %v, want an error naming the variable", tt.name, tt.value, err)
			}
			if _, err := os.Stat(f.Path); err == nil {
				t.Error("the file was written")
			}
		})
	}
}

func TestFileUpdate(t *testing.T) {
	f := &File{Path: filepath.Join(t.TempDir(), "env")}
	// A missing file is an empty environment.
	if err := f.Update(t.Context(), func(v *bootenv.Vars) error { return v.Set("a", "1") }); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("no")
	if err := f.Update(t.Context(), func(v *bootenv.Vars) error { v.Set("a", "2"); return failed }); !errors.Is(err, failed) {
		t.Errorf("Update = %v, want fn's error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Update(ctx, func(v *bootenv.Vars) error { return v.Set("a", "3") }); err == nil {
		t.Error("Update with a cancelled context succeeded")
	}
	b, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "a=1\n"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

// FuzzParseFile checks that what parses is written back as a file that
// parses to the same variables, unless it holds what the format cannot.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("gitfleet_slot=A\nupgrade_available=1\n"))
	f.Add([]byte("# c\n\na=b=c\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseFile(b)
		if err != nil {
			return
		}
		out, err := marshalFile(v)
		if err != nil {
			t.Fatalf("parsed %q, but cannot write it back: %v", b, err)
		}
		again, err := parseFile(out)
		if err != nil {
			t.Fatalf("cannot parse %q, written from %q: %v", out, b, err)
		}
		if again.String() != v.String() {
			t.Fatalf("%q parses to %q, written and parsed again to %q", b, v, again)
		}
	})
}
