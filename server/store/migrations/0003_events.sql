-- Device events, unique by (device, stream, sequence). There is no foreign key
-- to devices: an event may be ingested before its device's first status.
CREATE TABLE device_events (
	device_id TEXT NOT NULL,
	stream_id TEXT NOT NULL,
	seq BIGINT NOT NULL,
	boot_id TEXT NOT NULL,
	event_time BIGINT NOT NULL,  -- by the device's clock
	received_at BIGINT NOT NULL, -- by the server's clock
	from_state TEXT NOT NULL,
	to_state TEXT NOT NULL,
	version TEXT NOT NULL,
	bundle_digest TEXT NOT NULL,
	progress_done BIGINT NOT NULL,
	progress_total BIGINT NOT NULL,
	error_code TEXT NOT NULL,
	error_message TEXT NOT NULL,
	PRIMARY KEY (device_id, stream_id, seq)
);

-- A device's history, newest first.
CREATE INDEX device_events_history ON device_events (device_id, received_at, stream_id, seq);

-- The highest sequence stored for each stream. Appending an event locks its
-- stream's row first, so replicas ingesting the same stream at once agree on
-- what was new, late or missing.
CREATE TABLE event_streams (
	device_id TEXT NOT NULL,
	stream_id TEXT NOT NULL,
	last_seq BIGINT NOT NULL,
	PRIMARY KEY (device_id, stream_id)
);
