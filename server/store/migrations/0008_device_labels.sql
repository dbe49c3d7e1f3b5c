-- The labels a device reports in its status (agent.yaml device.labels), a
-- JSON object of name to value, which fleet.yaml's label selectors match.
-- Devices that reported before this step, and agents that report none, have
-- none.
ALTER TABLE devices ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
