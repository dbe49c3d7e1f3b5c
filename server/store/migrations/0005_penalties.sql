-- The penalty box: how often each device failed to install each release.
-- A device that failed a release too often is not offered it again until an
-- operator clears its penalty.
CREATE TABLE penalties (
	device_id TEXT NOT NULL,
	release_version TEXT NOT NULL,
	failures BIGINT NOT NULL,
	last_failure_at BIGINT NOT NULL,
	PRIMARY KEY (device_id, release_version)
);
