package boot

import "testing"

func TestUlong(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0},
		{"0", 0},
		{"1", 1},
		{"42", 42},
		{"007", 7}, // base 10: no octal
		{"12abc", 12},
		{"1a", 1},
		{" 1", 0}, // no leading space skipped
		{"-1", 0},
		{"0x1F", 31},
		{"0X10", 16},
		{"0x", 0},
		{"0xg", 0},
		{"18446744073709551616", 0}, // 2^64 wraps
	}
	for _, tt := range tests {
		if got := ulong(tt.in); got != tt.want {
			t.Errorf("ulong(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
