package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

// engines are the database engines every test runs on. dsn makes a fresh,
// empty database for the calling test.
var engines = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "data", "fleet.db") }},
	{"postgres", testenv.Postgres},
}

// eachEngine runs test once on each engine, as a parallel subtest named after
// it, with the DSN of a fresh database.
func eachEngine(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e.dsn(t))
		})
	}
}

// eachStore runs test once on each engine with a Store on a fresh database.
func eachStore(t *testing.T, test func(t *testing.T, s *Store)) {
	t.Helper()
	eachEngine(t, func(t *testing.T, dsn string) {
		test(t, openStore(t, dsn))
	})
}

// openStore opens dsn and closes it when the test ends.
func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// replicas opens n Stores on dsn, as n server replicas sharing a database.
func replicas(t testing.TB, dsn string, n int) []*Store {
	t.Helper()
	ss := make([]*Store, n)
	for i := range ss {
		ss[i] = openStore(t, dsn)
	}
	return ss
}

// race runs f(i) for i in [0, n) on n goroutines released together, to make
// them contend, and returns when all have returned.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// clock is a settable clock for Store.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s ...*Store) *clock {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	for _, s := range s {
		s.now = c.Now
	}
	return c
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestOpenRejects(t *testing.T) {
	for _, dsn := range []string{"", "fleet.db", "mysql://db/fleet", "sqlite:", "sqlite:/tmp/a?b.db"} {
		if s, err := Open(context.Background(), dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://gitfleet:s3cret@db:5432/fleet?sslmode=disable", "postgres://gitfleet:xxxxx@db:5432/fleet?sslmode=disable"},
		{"postgres://db/fleet", "postgres://db/fleet"},
		{"sqlite:/var/lib/gitfleet/fleet.db", "sqlite:/var/lib/gitfleet/fleet.db"},
	} {
		if got := redact(c.in); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// wantNotFound fails the test unless err is ErrNotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%s: got error %v, want ErrNotFound", what, err)
	}
}
