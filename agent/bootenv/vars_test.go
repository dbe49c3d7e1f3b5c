package bootenv_test

import (
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/google/go-cmp/cmp"
)

// newVars returns variables set from name, value pairs, in order.
func newVars(t testing.TB, pairs ...string) *bootenv.Vars {
	t.Helper()
	v := new(bootenv.Vars)
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := v.Set(pairs[i], pairs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// pairs returns v as name, value pairs in order, for cmp.Diff.
func pairs(v *bootenv.Vars) [][2]string {
	var p [][2]string
	for name, value := range v.All() {
		p = append(p, [2]string{name, value})
	}
	return p
}

func TestVarsKeepsOrder(t *testing.T) {
	v := newVars(t, "bootcmd", "run distro", "bootcount", "0", "altboot", "run b")
	if err := v.Set("bootcount", "1"); err != nil {
		t.Fatal(err)
	}
	if !v.Unset("altboot") {
		t.Error("Unset(altboot) = false, want true")
	}
	if v.Unset("altboot") {
		t.Error("second Unset(altboot) = true, want false")
	}
	if err := v.Set("altboot", ""); err != nil {
		t.Fatal(err)
	}
	got, want := pairs(v), [][2]string{{"bootcmd", "run distro"}, {"bootcount", "1"}, {"altboot", ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	if value, ok := v.Get("altboot"); !ok || value != "" {
		t.Errorf("Get(altboot) = %q, %v, want \"\", true", value, ok)
	}
	if _, ok := v.Get("missing"); ok {
		t.Error("Get(missing) reports set")
	}
	if got, want := v.Len(), 3; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestVarsSortCloneMapString(t *testing.T) {
	v := newVars(t, "b", "2", "a", "1\nx", "B", "3")
	c := v.Clone()
	c.Sort()
	if err := c.Set("c", "4"); err != nil {
		t.Fatal(err)
	}
	if got, want := v.Names(), []string{"b", "a", "B"}; !cmp.Equal(got, want) {
		t.Errorf("original Names() = %q, want %q: Clone shares state", got, want)
	}
	if got, want := c.Names(), []string{"B", "a", "b", "c"}; !cmp.Equal(got, want) {
		t.Errorf("sorted Names() = %q, want %q", got, want)
	}
	if got, want := c.String(), "B=3\na=1\nx\nb=2\nc=4\n"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if diff := cmp.Diff(map[string]string{"a": "1\nx", "b": "2", "B": "3"}, v.Map()); diff != "" {
		t.Errorf("Map() (-want +got):\n%s", diff)
	}
}

func TestVarsSetRejects(t *testing.T) {
	tests := []struct {
		name, varName, value, wantErr string
	}{
		{"empty name", "", "x", `variable "": empty name`},
		{"equals in name", "a=b", "x", `variable "a=b": name contains '='`},
		{"NUL in name", "a\x00b", "x", `variable "a\x00b": name contains NUL`},
		{"NUL in value", "a", "x\x00y", `variable "a": value contains NUL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v bootenv.Vars
			err := v.Set(tt.varName, tt.value)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Set(%q, %q) error = %v, want %s", tt.varName, tt.value, err, tt.wantErr)
			}
			if v.Len() != 0 {
				t.Errorf("Len() = %d after a rejected Set, want 0", v.Len())
			}
		})
	}
}

func TestVarsAllStopsEarly(t *testing.T) {
	v := newVars(t, "a", "1", "b", "2", "c", "3")
	var seen []string
	for name := range v.All() {
		seen = append(seen, name)
		if name == "b" {
			break
		}
	}
	if got, want := strings.Join(seen, ","), "a,b"; got != want {
		t.Errorf("iterated %s, want %s", got, want)
	}
}
