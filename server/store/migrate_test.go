package store

import (
	"context"
	"strings"
	"testing"
)

// migrationRows returns schema_migrations: how often each step is recorded.
func migrationRows(t *testing.T, s *Store) map[int]int {
	t.Helper()
	rows, err := s.reader().query(context.Background(), "SELECT version FROM schema_migrations")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	got := make(map[int]int)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		got[v]++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return got
}

// wantMigrated fails the test unless s records every step exactly once.
func wantMigrated(t *testing.T, s *Store) {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	got := migrationRows(t, s)
	if len(got) != len(ms) {
		t.Errorf("schema_migrations holds %d steps, want %d", len(got), len(ms))
	}
	for _, m := range ms {
		if got[m.version] != 1 {
			t.Errorf("step %04d_%s recorded %d times, want once", m.version, m.name, got[m.version])
		}
	}
}

func TestMigrationsAreNumbered(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if got, want := m.version, i+1; got != want {
			t.Errorf("migration %d has number %d, want %d", i, got, want)
		}
		if strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %04d_%s is empty", m.version, m.name)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		wantMigrated(t, s)
		if err := s.PutDevice(ctx, Device{ID: "d1", Channel: "stable"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		for range 2 {
			s := openStore(t, dsn)
			wantMigrated(t, s)
			d, err := s.Device(ctx, "d1")
			if err != nil {
				t.Fatalf("device after reopening: %v", err)
			}
			if got, want := d.Channel, "stable"; got != want {
				t.Errorf("channel after reopening = %q, want %q", got, want)
			}
		}
	})
}

// Replicas that start together on an empty database migrate it once, and
// every one of them starts.
func TestMigrateConcurrentOpen(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		race(n, func(i int) {
			stores[i], errs[i] = Open(context.Background(), dsn)
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: Open: %v", i, err)
				continue
			}
			defer stores[i].Close()
		}
		if t.Failed() {
			return
		}
		wantMigrated(t, stores[0])
	})
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		ms, err := migrations()
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.writer().exec(context.Background(),
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from-the-future', 0)", len(ms)+1)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := Open(context.Background(), dsn)
		if err == nil {
			s2.Close()
			t.Fatal("Open of a database migrated by a newer server succeeded, want an error")
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Errorf("Open: got error %q, want one saying the schema is newer", err)
		}
	})
}
