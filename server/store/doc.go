// Package store is the fleet database of gitfleet-server: releases and the
// claims that decide which server replica builds a tag, devices and their last
// reported status, device event streams, channel rollout state and the
// per-device penalty box.
//
// One schema serves two engines. On embedded defaults it is a SQLite file
// (modernc.org/sqlite, pure Go); past one machine it is PostgreSQL, shared by
// several server replicas. Every statement is written once, with ? placeholders,
// and the migrations in migrations/ are the same text on both engines. To keep
// them so, the schema uses only types both engines treat alike: TEXT, BIGINT
// and BOOLEAN. Times are BIGINT microseconds since the Unix epoch, so both
// engines compare and index them the same way; lists (device types, health
// checks, object keys) are JSON in TEXT columns.
//
// Open applies pending migrations in one transaction and records them in
// schema_migrations; on PostgreSQL it holds an advisory lock meanwhile, so
// replicas that start together migrate once.
//
// Operations that replicas race on are single atomic statements or
// transactions that lock what they read: ClaimBuild, AppendEvent, SwapChannel
// and RecordFailure give the same answers whether callers share a Store, use
// one each on the same database, or run in different processes.
//
// SCHEMA.md beside this package describes the tables, what holds when
// replicas race, and what the indexes are for.
package store
