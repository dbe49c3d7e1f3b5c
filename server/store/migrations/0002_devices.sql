-- A device and the last status it reported. Rows are written by status
-- ingest, which replaces every status column at once, and by the last will,
-- which clears online only.
CREATE TABLE devices (
	id TEXT PRIMARY KEY,
	fleet TEXT NOT NULL,
	device_type TEXT NOT NULL,
	channel TEXT NOT NULL,
	agent_version TEXT NOT NULL,
	boot_id TEXT NOT NULL,
	booted_slot TEXT NOT NULL,
	active_slot TEXT NOT NULL,
	version TEXT NOT NULL,
	tag TEXT NOT NULL,
	commit_id TEXT NOT NULL,
	bundle_digest TEXT NOT NULL,
	boot_confirmed BOOLEAN NOT NULL,
	update_state TEXT NOT NULL,
	target_version TEXT NOT NULL,
	target_bundle_digest TEXT NOT NULL,
	progress_done BIGINT NOT NULL,
	progress_total BIGINT NOT NULL,
	health_ok BOOLEAN NOT NULL,
	health_checks TEXT NOT NULL, -- JSON array of {name, ok, message}
	error_code TEXT NOT NULL,
	error_message TEXT NOT NULL,
	online BOOLEAN NOT NULL,
	status_time BIGINT NOT NULL, -- by the device's clock
	last_seen BIGINT NOT NULL,   -- by the server's clock
	first_seen BIGINT NOT NULL
);

-- The device list pages through devices in id order, filtered on any of the
-- columns below. Each has an index that starts with it and id, so that a page
-- filtered on it is a range scan in id order, not a sort of every match.
-- Behind id each index holds the other filter columns, so that a device is
-- tested against the other filters of a query from the index entry alone:
-- only devices that match are read from the table. Without them, a page of
-- offline unconfirmed devices read every offline device's row, five times
-- slower on SQLite (which, unlike PostgreSQL, does not combine indexes).
CREATE INDEX devices_fleet ON devices (fleet, id, channel, version, tag, commit_id, update_state, health_ok, boot_confirmed, online);
CREATE INDEX devices_channel ON devices (channel, id, fleet, version, tag, commit_id, update_state, health_ok, boot_confirmed, online);
CREATE INDEX devices_version ON devices (version, id, fleet, channel, tag, commit_id, update_state, health_ok, boot_confirmed, online);
CREATE INDEX devices_tag ON devices (tag, id, fleet, channel, version, commit_id, update_state, health_ok, boot_confirmed, online);
CREATE INDEX devices_commit ON devices (commit_id, id, fleet, channel, version, tag, update_state, health_ok, boot_confirmed, online);
CREATE INDEX devices_state ON devices (update_state, id, fleet, channel, version, tag, commit_id, health_ok, boot_confirmed, online);
CREATE INDEX devices_health ON devices (health_ok, id, fleet, channel, version, tag, commit_id, update_state, boot_confirmed, online);
CREATE INDEX devices_confirmed ON devices (boot_confirmed, id, fleet, channel, version, tag, commit_id, update_state, health_ok, online);
CREATE INDEX devices_online ON devices (online, id, fleet, channel, version, tag, commit_id, update_state, health_ok, boot_confirmed);
