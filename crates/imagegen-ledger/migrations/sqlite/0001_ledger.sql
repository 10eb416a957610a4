-- The ledger's tables on SQLite. docs/ledger-schema.md describes every column and the
-- invariants; migrations/postgres/0001_ledger.sql is the same schema for PostgreSQL.
-- Money is always integer millionths of a credit (`*_micros`), times are milliseconds
-- since the Unix epoch (`*_ms`).

CREATE TABLE requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
    prompt        TEXT    NOT NULL,
    request_json  TEXT    NOT NULL,
    out_dir       TEXT    NOT NULL,
    batch_key     TEXT,
    batch_line    INTEGER CHECK (batch_line IS NULL OR batch_line >= 0),
    request_key   TEXT    NOT NULL
);
CREATE INDEX requests_by_key ON requests (request_key);
CREATE INDEX requests_by_batch ON requests (batch_key, batch_line);

CREATE TABLE budgets (
    name             TEXT    PRIMARY KEY,
    limit_micros     INTEGER CHECK (limit_micros IS NULL OR limit_micros >= 0),
    spent_micros     INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    reserved_micros  INTEGER NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    overshoot_micros INTEGER NOT NULL DEFAULT 0 CHECK (overshoot_micros >= 0),
    updated_at_ms    INTEGER NOT NULL
);

CREATE TABLE reservations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    budget         TEXT    NOT NULL REFERENCES budgets (name),
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    state          TEXT    NOT NULL CHECK (state IN ('held', 'settled', 'released')),
    charged_micros INTEGER CHECK (charged_micros IS NULL OR charged_micros >= 0),
    created_at_ms  INTEGER NOT NULL,
    closed_at_ms   INTEGER,
    CHECK ((state = 'held') = (closed_at_ms IS NULL)),
    CHECK ((state = 'settled') = (charged_micros IS NOT NULL))
);
CREATE INDEX reservations_held ON reservations (budget) WHERE state = 'held';

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    provider         TEXT    NOT NULL,
    job_id           TEXT    NOT NULL,
    model            TEXT,
    images_requested INTEGER NOT NULL CHECK (images_requested >= 0),
    state            TEXT    NOT NULL CHECK (state IN ('accepted', 'done', 'failed')),
    handle_json      TEXT    NOT NULL,
    plan_json        TEXT,
    request_id       INTEGER REFERENCES requests (id),
    prompt           TEXT    NOT NULL,
    out_dir          TEXT    NOT NULL,
    reserved_micros  INTEGER NOT NULL CHECK (reserved_micros >= 0),
    charged_micros   INTEGER CHECK (charged_micros IS NULL OR charged_micros >= 0),
    accepted_at_ms   INTEGER NOT NULL CHECK (accepted_at_ms >= 0),
    finished_at_ms   INTEGER,
    error            TEXT,
    budget           TEXT,
    reservation_id   INTEGER REFERENCES reservations (id),
    UNIQUE (provider, job_id),
    CHECK ((state = 'accepted') = (finished_at_ms IS NULL))
);
CREATE INDEX jobs_open ON jobs (accepted_at_ms, id) WHERE state = 'accepted';
CREATE INDEX jobs_by_time ON jobs (accepted_at_ms, id);
CREATE INDEX jobs_by_request ON jobs (request_id);

CREATE TABLE images (
    provider      TEXT    NOT NULL,
    job_id        TEXT    NOT NULL,
    image_index   INTEGER NOT NULL CHECK (image_index >= 0),
    path          TEXT    NOT NULL,
    sha256        TEXT,
    bytes         INTEGER CHECK (bytes IS NULL OR bytes >= 0),
    mime          TEXT,
    width         INTEGER,
    height        INTEGER,
    alt_text      TEXT,
    source_url    TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, job_id, image_index),
    FOREIGN KEY (provider, job_id) REFERENCES jobs (provider, job_id)
);

CREATE TABLE rate_windows (
    provider        TEXT    NOT NULL,
    account_hash    TEXT    NOT NULL,
    window_start_ms INTEGER NOT NULL,
    taken           INTEGER NOT NULL CHECK (taken >= 0),
    PRIMARY KEY (provider, account_hash)
);

CREATE TABLE cooldowns (
    provider TEXT    NOT NULL,
    model    TEXT    NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, model)
);
