-- When the rollout controller last ordered a device to retry a release it
-- failed (ACTION_RETRY): the device's failure count at the time, NULL for
-- never since its penalty was last cleared. Kept here rather than in one
-- replica's memory, so no restart or other replica orders the same retry
-- twice.
ALTER TABLE penalties ADD COLUMN retried_at BIGINT;
