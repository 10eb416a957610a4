-- Gateway API keys and idempotency records (`imagegen serve`) on SQLite.
-- docs/ledger-schema.md describes every column; migrations/postgres/0002_keys.sql is the
-- same schema for PostgreSQL. A key is never stored: only its SHA-256 and a display
-- prefix. A key's spending is an ordinary budget per period (`key:<id>:<period>`).

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL CHECK (length(name) > 0),
    key_hash      TEXT    NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix        TEXT    NOT NULL,
    limit_micros  INTEGER CHECK (limit_micros IS NULL OR limit_micros >= 0),
    period        TEXT    NOT NULL CHECK (period IN ('day', 'month', 'total')),
    created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
    revoked_at_ms INTEGER
);
-- A name is unique among live keys; a revoked key's name may be used again.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at_ms IS NULL;
CREATE INDEX api_keys_by_prefix ON api_keys (prefix) WHERE revoked_at_ms IS NULL;

CREATE TABLE idempotency (
    scope          TEXT    NOT NULL,
    idem_key       TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('running', 'done')),
    status         INTEGER CHECK (status IS NULL OR status BETWEEN 0 AND 65535),
    response       TEXT,
    created_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    PRIMARY KEY (scope, idem_key),
    CHECK ((state = 'done') = (finished_at_ms IS NOT NULL)),
    CHECK ((state = 'done') = (status IS NOT NULL AND response IS NOT NULL))
);
CREATE INDEX idempotency_by_time ON idempotency (created_at_ms);
