package testenv_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	conn := connectPostgres(t, testenv.Postgres(t))
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `CREATE TABLE devices (id text PRIMARY KEY, slot text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO devices (id, slot) VALUES ($1, $2), ($3, $4)`,
		"device-1", "a", "device-2", "b"); err != nil {
		t.Fatal(err)
	}
	var slot string
	if err := conn.QueryRow(ctx, `SELECT slot FROM devices WHERE id = $1`, "device-2").Scan(&slot); err != nil {
		t.Fatal(err)
	}
	if slot != "b" {
		t.Errorf("got slot %q, want %q", slot, "b")
	}
}

// TestPostgresDatabasePerTest checks that each Postgres call gets a database of its own, dropped when
// its test ends even if a connection to it is still open.
func TestPostgresDatabasePerTest(t *testing.T) {
	t.Parallel()
	var (
		name string
		open *pgx.Conn // to the subtest's database, left open past the subtest's end
	)
	ok := t.Run("test", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		name = databaseName(t, dsn)
		var err error
		if open, err = pgx.Connect(t.Context(), dsn); err != nil {
			t.Fatal(err)
		}
		if _, err := open.Exec(t.Context(), `CREATE TABLE mine (x int)`); err != nil {
			t.Fatal(err)
		}

		other := connectPostgres(t, testenv.Postgres(t))
		var found bool
		if err := other.QueryRow(t.Context(), `SELECT to_regclass('mine') IS NOT NULL`).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found {
			t.Errorf("a table made in one test database shows in another")
		}
	})
	if open != nil {
		defer open.Close(context.Background())
	}
	if !ok {
		return
	}

	admin := connectPostgres(t, os.Getenv("GITFLEET_TEST_PG_DSN"))
	var exists bool
	err := admin.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// connectPostgres connects to dsn until the test ends.
func connectPostgres(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func databaseName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
