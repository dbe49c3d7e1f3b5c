package slot

import (
	"slices"
	"strings"
	"testing"
)

func TestCmdlineParams(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"proc", "console=ttyS0,115200 root=/dev/vda2 rw\n", []string{"console=ttyS0,115200", "root=/dev/vda2", "rw"}},
		{"tabs and runs of spaces", " a=1\t\tb  c\r\n", []string{"a=1", "b", "c"}},
		{"quoted value", `dyndbg="file x.c +p" gitfleet.slot=A`, []string{"dyndbg=file x.c +p", "gitfleet.slot=A"}},
		{"quoted parameter", `"gitfleet.slot=B" x`, []string{"gitfleet.slot=B", "x"}},
		{"empty quotes", `"" x`, []string{"", "x"}},
		{"unterminated quote", `a "b c`, []string{"a", "b c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cmdlineParams(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("cmdlineParams(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzCmdlineParams checks that splitting never panics, that parameters
// hold no quote, and no whitespace unless the input quoted some.
func FuzzCmdlineParams(f *testing.F) {
	f.Add("console=ttyS0 gitfleet.slot=A\n")
	f.Add(`x="a b" "gitfleet.slot=B"`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range cmdlineParams(s) {
			if strings.Contains(p, `"`) {
				t.Fatalf("parameter %q of %q holds a quote", p, s)
			}
			if !strings.Contains(s, `"`) && strings.ContainsAny(p, " \t\n\v\f\r") {
				t.Fatalf("parameter %q of unquoted %q holds whitespace", p, s)
			}
		}
		if v, ok := cmdlineValue(s, "k"); ok && !strings.Contains(s, "k="+v) && !strings.Contains(s, `"`) {
			t.Fatalf("cmdlineValue(%q, k) = %q, which is not in it", s, v)
		}
	})
}
