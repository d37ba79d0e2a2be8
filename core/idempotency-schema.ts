import type { AreaSchema } from './storage.js'

/**
 * The `Idempotency-Key` records' table (core/idempotency-store.ts), migrated
 * by `sqliteIdempotencyStore`.
 */
export const IDEMPOTENCY_SCHEMA: AreaSchema = {
  area: 'idempotency',
  migrations: [
    // status and answer are NULL while a request's answer is still coming (a batch awaiting the model)
    `CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status INTEGER,
    answer TEXT,
    partial TEXT,
    PRIMARY KEY (scope, key)
  )`,
    'CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)',
    // bytes: the recorded answer's size, for IDEMPOTENCY_MAX_MB; derived: the answer is a digest the route rebuilds the answer from
    `ALTER TABLE idempotency_keys ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE idempotency_keys ADD COLUMN derived INTEGER NOT NULL DEFAULT 0;
  UPDATE idempotency_keys SET bytes = length(answer) WHERE answer IS NOT NULL`
  ]
}
