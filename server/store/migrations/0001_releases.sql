-- A release is a signed Git tag. Its row appears when a server replica first
-- claims the tag's build, and the release fields fill in when the build
-- succeeds. Only the replica named in build_owner, until build_lease_until,
-- builds the tag; another may claim it once the lease has run out.
CREATE TABLE releases (
	tag TEXT PRIMARY KEY,
	-- version is NULL until the build succeeded (NULLs do not collide in a
	-- UNIQUE column on either engine).
	version TEXT UNIQUE,
	counter BIGINT NOT NULL DEFAULT 0,
	product TEXT NOT NULL DEFAULT '',
	device_types TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
	bundle_digest TEXT NOT NULL DEFAULT '',
	bundle_size BIGINT NOT NULL DEFAULT 0,
	tag_object TEXT NOT NULL DEFAULT '',
	commit_id TEXT NOT NULL DEFAULT '',
	signer TEXT NOT NULL DEFAULT '',
	object_keys TEXT NOT NULL DEFAULT '{}', -- JSON object: role -> object key
	build_state TEXT NOT NULL CHECK (build_state IN ('building', 'succeeded', 'failed')),
	build_owner TEXT NOT NULL,
	build_lease_until BIGINT NOT NULL,
	build_log TEXT NOT NULL DEFAULT '',
	build_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX releases_created ON releases (created_at, tag);
