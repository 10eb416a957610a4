-- The generation (the gateway request, in `generations`) an idempotency record belongs
-- to: when the gateway running it dies, another finishes it, and a repeat of the request
-- with the same `Idempotency-Key` is answered from that generation. docs/ledger-schema.md
-- describes it; migrations/sqlite/0004_idempotent_generation.sql is the same for SQLite.
ALTER TABLE idempotency ADD COLUMN generation_id TEXT;
