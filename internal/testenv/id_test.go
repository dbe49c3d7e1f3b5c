package testenv_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

func TestID(t *testing.T) {
	tests := []struct {
		subtest, wantPrefix string
	}{
		{"Device_1", "testid-device-1-"},
		{"été: ça va", "testid-t-a-va-"},
		{strings.Repeat("long ", 20), "testid-long-long-long-long-long-long-lon-"},
	}
	valid := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	for _, tt := range tests {
		t.Run(tt.subtest, func(t *testing.T) {
			id := testenv.ID(t)
			if !strings.HasPrefix(id, tt.wantPrefix) || len(id) != len(tt.wantPrefix)+8 || !valid.MatchString(id) {
				t.Errorf("ID = %q, want %q and 8 hex digits", id, tt.wantPrefix)
			}
			if again := testenv.ID(t); again == id {
				t.Errorf("ID returned %q twice", id)
			}
		})
	}
}
