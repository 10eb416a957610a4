-- Holds of gateways that died: a reservation a gateway holds for one of its generations
-- carries that gateway's lease and names the generation, so when the gateway dies
-- (`kill -9`) another resolves the hold from what was sent: settled by its jobs'
-- charges, settled in full when its request was recorded (the write-ahead) with no job,
-- released when nothing was sent. docs/ledger-schema.md describes the columns;
-- migrations/sqlite/0005_held_leases.sql is the same for SQLite.
ALTER TABLE reservations ADD COLUMN lease_owner TEXT;
ALTER TABLE reservations ADD COLUMN lease_until_ms BIGINT;
ALTER TABLE reservations ADD COLUMN generation_id TEXT;
CREATE INDEX reservations_leased ON reservations (lease_until_ms) WHERE state = 'held' AND lease_owner IS NOT NULL;
