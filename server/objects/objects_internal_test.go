package objects

import "testing"

func TestPartSize(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		want, size int64
		wantPart   int64
	}{
		{"small object", DefaultPartSize, 1, DefaultPartSize},
		{"10,000 parts exactly", DefaultPartSize, 10_000 * DefaultPartSize, DefaultPartSize},
		{"one byte more", DefaultPartSize, 10_000*DefaultPartSize + 1, DefaultPartSize + mib},
		{"largest image", DefaultPartSize, 1 << 40, 105 * mib},
		{"largest image, large parts", 512 * mib, 1 << 40, 512 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := partSize(tc.want, tc.size)
			if got != tc.wantPart {
				t.Errorf("partSize(%d, %d) = %d, want %d", tc.want, tc.size, got, tc.wantPart)
			}
			if parts := (tc.size + got - 1) / got; parts > maxParts {
				t.Errorf("partSize(%d, %d) = %d makes %d parts, over %d", tc.want, tc.size, got, parts, maxParts)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"bundles/0123abcd.dsse.json", true},
		{"blobs/sha256/0123abcd", true},
		{"x", true},
		{"A-Z_a.z", true},
		{"", false},
		{"/x", false},
		{"x/", false},
		{"x//y", false},
		{".", false},
		{"..", false},
		{"x/../y", false},
		{".hidden", false},
		{"x/.put-123", false},
		{`x\y`, false},
		{"x y", false},
		{"x\ny", false},
		{"é", false},
		{"x?y", false},
		{"x%2Fy", false},
	} {
		if err := checkKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("checkKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
		}
	}
}
