-- The rollout state of each channel: which release it rolls out, how far
-- (wave), and whether it goes on.
CREATE TABLE channels (
	name TEXT PRIMARY KEY,
	release_version TEXT NOT NULL,
	wave BIGINT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('ACTIVE', 'PAUSED', 'ABORTED', 'HALTED')),
	reason TEXT NOT NULL,
	wave_started_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
