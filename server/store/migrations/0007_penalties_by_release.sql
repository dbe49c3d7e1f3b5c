-- The rollout controller reads the failures of every device of a channel
-- with one query for the channel's release (ReleaseFailures), not one a
-- device: this index holds what that query reads.
CREATE INDEX penalties_release ON penalties (release_version, device_id, failures);
