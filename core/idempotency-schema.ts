import type { PgAreaSchema } from './postgres.js'
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

/**
 * The same table in PostgreSQL (a cluster's `DATABASE_URL`), shared by every
 * instance: the columns of {@link IDEMPOTENCY_SCHEMA} as they are after its
 * last migration, plus `lease_until`. Migrated by
 * core/idempotency-store-postgres.ts (`PostgresIdempotencyStore.open`).
 */
export const IDEMPOTENCY_PG_SCHEMA: PgAreaSchema = {
  area: 'idempotency',
  migrations: [
    // times are epoch milliseconds (bigint: they overflow integer); status and answer are NULL while a request's
    // answer is still coming; lease_until: until when the instance that claimed (or resumed) such a request is
    // presumed to be working on it (NULL: no one is, a retry may resume it)
    `CREATE TABLE idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    created_at bigint NOT NULL,
    status integer,
    answer text,
    partial text,
    bytes bigint NOT NULL DEFAULT 0,
    derived boolean NOT NULL DEFAULT false,
    lease_until bigint,
    PRIMARY KEY (scope, key)
  );
  CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)`
  ]
}
