package testenv

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres creates a database for the calling test on the test PostgreSQL server and returns its
// connection string, a postgres:// URL for pgx or libpq. The test's account is the server's superuser.
// The database is dropped when the test ends, even if connections to it are still open.
func Postgres(t testing.TB) string {
	t.Helper()
	var e env
	admin := e.get("GITFLEET_TEST_PG_DSN")
	e.check(t, "the test PostgreSQL server")
	dsn, err := url.Parse(admin)
	if err != nil || dsn.Scheme != "postgres" && dsn.Scheme != "postgresql" {
		t.Fatalf("testenv: GITFLEET_TEST_PG_DSN is not a postgres:// URL")
	}

	name := ID(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		fatalf(t, "the test PostgreSQL server at GITFLEET_TEST_PG_DSN cannot create a database: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		drop := "DROP DATABASE " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		if err := execAdmin(ctx, admin, drop); err != nil {
			t.Errorf("testenv: drop the test's database %s: %v", name, err)
		}
	})
	dsn.Path = "/" + name
	return dsn.String()
}

// execAdmin runs one statement as the server's superuser.
func execAdmin(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
