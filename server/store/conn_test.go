package store

import (
	"testing"
	"time"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"numbered", "UPDATE t SET a = ? WHERE b = ? AND c = ?", "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"},
		{"literal", "SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = $1"},
		{"identifier", `SELECT "a?" FROM t WHERE a = ?`, `SELECT "a?" FROM t WHERE a = $1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := (conn{postgres: true}).rebind(c.in); got != c.want {
				t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
			}
			if got := (conn{}).rebind(c.in); got != c.in {
				t.Errorf("rebind for SQLite changed %q to %q", c.in, got)
			}
		})
	}
}

func TestMicros(t *testing.T) {
	for _, c := range []struct {
		name string
		t    time.Time
		want int64
	}{
		{"zero", time.Time{}, 0},
		{"epoch", time.Unix(0, 1000), 1},
		{"truncated to microseconds", time.Date(2026, 3, 1, 12, 0, 0, 1999, time.UTC), 1772366400000001},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := micros(c.t)
			if got != c.want {
				t.Errorf("micros(%v) = %d, want %d", c.t, got, c.want)
			}
			if back := fromMicros(got); !back.Equal(c.t.Truncate(time.Microsecond)) {
				t.Errorf("fromMicros(%d) = %v, want %v", got, back, c.t.Truncate(time.Microsecond))
			}
		})
	}
}
