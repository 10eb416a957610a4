-- Many gateways on one database (`imagegen serve` processes sharing one ledger):
-- leases on open jobs, background generations any instance can answer, and the sliding
-- window of provider calls every instance paces against. docs/ledger-schema.md describes
-- every column; migrations/postgres/0003_instances.sql is the same schema for PostgreSQL.

-- The instance running an open job holds a lease on it and renews it while it runs; once
-- a lease expires (its instance died), another instance claims the job and finishes it.
-- A job with no lease (from the CLI) is left to `imagegen resume`.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until_ms INTEGER;
CREATE INDEX jobs_leased ON jobs (lease_until_ms) WHERE state = 'accepted' AND lease_owner IS NOT NULL;

-- A generation started with `POST /v1/generations`, readable on any instance.
CREATE TABLE generations (
    id             TEXT    PRIMARY KEY,
    caller         TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    request_key    TEXT,
    progress       TEXT,
    status         INTEGER  CHECK (status IS NULL OR status BETWEEN 0 AND 65535),
    response       TEXT,
    lease_owner    TEXT    NOT NULL,
    lease_until_ms INTEGER  NOT NULL,
    created_at_ms  INTEGER  NOT NULL CHECK (created_at_ms >= 0),
    updated_at_ms  INTEGER  NOT NULL,
    finished_at_ms INTEGER,
    CHECK ((state = 'running') = (finished_at_ms IS NULL)),
    CHECK ((state = 'running') = (status IS NULL))
);
CREATE INDEX generations_running ON generations (lease_until_ms) WHERE state = 'running';
CREATE INDEX generations_by_time ON generations (created_at_ms);

-- One provider call that counts against a rate limit: taken when it is sent, done when
-- its answer arrived. The calls of the last window (and those still in flight) are the
-- ones a new call counts against; `rate_windows` holds the row each acquisition locks.
CREATE TABLE rate_slots (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provider     TEXT    NOT NULL,
    account_hash TEXT    NOT NULL,
    taken_at_ms  INTEGER  NOT NULL,
    done_at_ms   INTEGER
);
CREATE INDEX rate_slots_by_account ON rate_slots (provider, account_hash);

-- Which key a job was paid by (`GET /v1/spend` for that key).
ALTER TABLE jobs ADD COLUMN api_key_id INTEGER;
CREATE INDEX jobs_by_key ON jobs (api_key_id, accepted_at_ms) WHERE api_key_id IS NOT NULL;
