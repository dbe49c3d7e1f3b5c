package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when the release, device or channel asked for is not
// in the database.
var ErrNotFound = errors.New("not found")

// sqliteReaders is how many read-only connections a SQLite Store keeps beside
// its one writer.
const sqliteReaders = 4

// Store is the fleet database. Its methods are safe for concurrent use.
type Store struct {
	postgres bool
	// db takes every write, and on PostgreSQL every read too. On SQLite it
	// holds one connection: SQLite lets one writer in at a time, and queueing
	// writers in Go is fairer and faster than SQLite's sleeping busy handler.
	db *sql.DB
	// rdb takes reads. On SQLite it is a pool of read-only connections, which
	// WAL mode lets read while the writer writes; on PostgreSQL it is db.
	rdb *sql.DB
	now func() time.Time

	putMu sync.Mutex
	put   *putStatements // prepared by the first PutDevices
}

// Open opens the database that dsn names and applies the migrations it lacks.
// dsn is either a PostgreSQL URL, "postgres://USER:PASSWORD@HOST/DB?...", or
// "sqlite:PATH" for a SQLite file, which Open creates with its directory if
// they do not exist. Close the Store when done.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var s *Store
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn)
	case strings.HasPrefix(dsn, "sqlite:"):
		s, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	default:
		return nil, fmt.Errorf("open database: %q is neither postgres://... nor sqlite:PATH", redact(dsn))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if !s.postgres {
		if err := s.Optimize(ctx); err != nil {
			s.Close()
			return nil, err
		}
	} else if err := s.leaveRoomForHeartbeats(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openPostgres(dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", redact(dsn), err)
	}
	// pgx prepares each statement once a connection, and after five runs
	// PostgreSQL may plan a prepared statement once for any arguments. Such a
	// generic plan cannot know that few devices are unhealthy but most are
	// online, and would page through the device list by the primary key for
	// either. Planning for each query's own arguments costs a fraction of a
	// millisecond and keeps the filter indexes in use.
	if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	db := stdlib.OpenDB(*cfg)
	// A replica's connections are a share of the server's max_connections
	// (100 by default), which every replica draws on.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Store{postgres: true, db: db, rdb: db, now: time.Now}, nil
}

func openSQLite(path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite database: path %q is empty or holds a '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// busy_timeout covers other processes (and other Stores) on the same file.
	// _txlock=immediate takes the write lock at BEGIN: a transaction that
	// reads and then writes could otherwise fail with SQLITE_BUSY, which no
	// busy timeout retries, when another writer committed in between.
	params := "_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL"
	// The writer takes a fleet's statuses, a row on a page of its own each:
	// a cache of 64 MiB holds the devices table of 100,000 devices and its
	// indexes, a checkpoint every 8,192 pages (a WAL of up to 32 MiB) writes
	// a page changed several times once, and the statement journal of a
	// batch (temp_store) stays in memory. Together they halve the CPU time a
	// status costs (store.BenchmarkPutDevices).
	db, err := sql.Open("sqlite", path+"?"+params+"&_txlock=immediate"+
		"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(8192)&_pragma=temp_store(memory)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	rdb, err := sql.Open("sqlite", path+"?"+params+"&_query_only=1")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(sqliteReaders)
	rdb.SetMaxIdleConns(sqliteReaders)
	return &Store{db: db, rdb: rdb, now: time.Now}, nil
}

// devicesFillFactor is how full, in percent, PostgreSQL fills the pages of
// the devices table: see leaveRoomForHeartbeats.
const devicesFillFactor = 70

// leaveRoomForHeartbeats has PostgreSQL leave room in the pages of the
// devices table, for an update to write its new row version on the page of
// the old one. Such an update that changes no indexed column (a heartbeat,
// progress) is then a heap-only tuple update, which writes none of the
// device list's nine indexes; on a full page it writes them all. It is a
// storage parameter, not schema, so Open sets it, on PostgreSQL only (SQLite
// updates a row in place): rows written from then on are written so.
func (s *Store) leaveRoomForHeartbeats(ctx context.Context) error {
	var options sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'devices'::regclass").Scan(&options)
	if err != nil {
		return fmt.Errorf("read the storage parameters of devices: %w", err)
	}
	want := fmt.Sprintf("fillfactor=%d", devicesFillFactor)
	if strings.Contains(options.String, want) {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, "ALTER TABLE devices SET ("+want+")"); err != nil {
		return fmt.Errorf("set the fill factor of devices: %w", err)
	}
	return nil
}

// Optimize refreshes the statistics by which the query planner picks an index
// for a filtered device list, where they are stale. PostgreSQL's autovacuum
// does so by itself within minutes of a large change; SQLite does not, so a
// long-running server on SQLite calls Optimize now and then (hourly, SQLite
// suggests). Open calls it too. It takes a fraction of a second.
func (s *Store) Optimize(ctx context.Context) error {
	query := "ANALYZE"
	if !s.postgres {
		// 0x10002: analyze every table that needs it, not only those this
		// connection queried; with an analysis limit SQLite sets itself.
		query = "PRAGMA optimize=0x10002"
	}
	if _, err := s.db.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("optimize database: %w", err)
	}
	return nil
}

// Close closes the database. Calls in progress finish first.
func (s *Store) Close() error {
	var err error
	s.putMu.Lock()
	if s.put != nil {
		err = s.put.close()
		s.put = nil
	}
	s.putMu.Unlock()
	err = errors.Join(err, s.db.Close())
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// redact hides the password of a database URL, for error messages.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	at := strings.LastIndexByte(rest, '@')
	colon := strings.IndexByte(rest, ':')
	if at < 0 || colon < 0 || colon > at {
		return dsn
	}
	return scheme + "://" + rest[:colon] + ":xxxxx" + rest[at:]
}
