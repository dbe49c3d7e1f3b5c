package bootenv

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Vars is an ordered set of environment variables. It keeps the order in
// which names were first set, because both formats store variables in the
// order they are written and grub-editenv keeps a variable's position when its
// value changes; setting an existing name changes its value in place.
//
// The zero value is an empty set ready to use. A Vars is not safe for
// concurrent use.
type Vars struct {
	names  []string
	values map[string]string
}

// Get returns the value of the variable name and whether it is set.
func (v *Vars) Get(name string) (value string, ok bool) {
	value, ok = v.values[name]
	return value, ok
}

// Set sets the variable name to value, appending name if it is new. It
// returns an error naming the variable if the name is empty or holds '=' or
// NUL, or if the value holds NUL: no environment format can store those.
// Format-specific limits (a GRUB name cannot hold a newline) are checked when
// the variables are encoded.
func (v *Vars) Set(name, value string) error {
	if err := checkVar(name, value); err != nil {
		return err
	}
	v.set(name, value)
	return nil
}

// set is Set for names and values already known to be valid.
func (v *Vars) set(name, value string) {
	if v.values == nil {
		v.values = make(map[string]string)
	}
	if _, ok := v.values[name]; !ok {
		v.names = append(v.names, name)
	}
	v.values[name] = value
}

// Unset removes the variable name and reports whether it was set.
func (v *Vars) Unset(name string) bool {
	if _, ok := v.values[name]; !ok {
		return false
	}
	delete(v.values, name)
	v.names = slices.DeleteFunc(v.names, func(n string) bool { return n == name })
	return true
}

// Len returns the number of variables.
func (v *Vars) Len() int { return len(v.names) }

// Names returns the variable names in order.
func (v *Vars) Names() []string { return slices.Clone(v.names) }

// All returns an iterator over the variables, in order, as name and value.
// The set must not be changed during the iteration.
func (v *Vars) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, name := range v.names {
			if !yield(name, v.values[name]) {
				return
			}
		}
	}
}

// Map returns the variables as a map, dropping their order.
func (v *Vars) Map() map[string]string {
	m := make(map[string]string, len(v.names))
	maps.Copy(m, v.values)
	return m
}

// Sort orders the variables by name, bytewise, the order in which U-Boot's
// "env export" and libubootenv's fw_setenv write them.
func (v *Vars) Sort() { slices.Sort(v.names) }

// Clone returns an independent copy of v.
func (v *Vars) Clone() *Vars {
	return &Vars{names: slices.Clone(v.names), values: maps.Clone(v.values)}
}

// String returns the variables as "name=value" lines, in order, the way
// grub-editenv list and (for sorted variables) fw_printenv print them.
func (v *Vars) String() string {
	var b strings.Builder
	for name, value := range v.All() {
		fmt.Fprintf(&b, "%s=%s\n", name, value)
	}
	return b.String()
}

// checkVar returns an error naming the variable if no format can store it.
func checkVar(name, value string) error {
	switch {
	case name == "":
		return fmt.Errorf("variable %q: empty name", name)
	case strings.ContainsRune(name, '='):
		return fmt.Errorf("variable %q: name contains '='", name)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("variable %q: name contains NUL", name)
	case strings.ContainsRune(value, 0):
		return fmt.Errorf("variable %q: value contains NUL", name)
	}
	return nil
}
