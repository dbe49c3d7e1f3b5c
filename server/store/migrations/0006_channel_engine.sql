-- The rollout engine's whole state of a channel (server/rollout.Rollout as
-- JSON), which the typed columns above summarise for queries: the controller
-- reads and writes it, nothing else interprets it.
ALTER TABLE channels ADD COLUMN engine TEXT NOT NULL DEFAULT '';
