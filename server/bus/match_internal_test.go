package bus

import "testing"

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, name string
		want         bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a/b/c", true},
		{"a/#", "a", true},
		{"#", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"+/+", "a/b", true},
		{"+", "a/b", false},
		{"gitfleet/v1/f/devices/+/status", "gitfleet/v1/f/devices/d/status", true},
		{"gitfleet/v1/f/devices/+/status", "gitfleet/v1/f/devices/d/events", false},
	} {
		if got := matches(tc.filter, tc.name); got != tc.want {
			t.Errorf("matches(%q, %q) = %t, want %t", tc.filter, tc.name, got, tc.want)
		}
	}
}

func TestUnshared(t *testing.T) {
	for _, tc := range []struct {
		filter, want string
		shared       bool
	}{
		{"$share/g/a/+", "a/+", true},
		{"a/+", "a/+", false},
		{"$share/g", "$share/g", false},
	} {
		got, shared := unshared(tc.filter)
		if got != tc.want || shared != tc.shared {
			t.Errorf("unshared(%q) = %q, %t; want %q, %t", tc.filter, got, shared, tc.want, tc.shared)
		}
	}
}
