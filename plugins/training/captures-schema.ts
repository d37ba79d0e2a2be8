import type { PgAreaSchema } from '../../core/postgres.js'
import type { AreaSchema } from '../../core/storage.js'

/** The capture sessions' table (capture-sessions.ts), migrated by CaptureSessions. */
export const CAPTURES_SCHEMA: AreaSchema = {
  area: 'captures',
  migrations: [
    `CREATE TABLE capture_sessions (
    device INTEGER PRIMARY KEY CHECK (device BETWEEN 0 AND 32767),
    angle REAL NOT NULL,
    started_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    frames_wanted INTEGER,
    source TEXT,
    after_sample INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'finished', 'cancelled', 'interrupted')),
    frames_stored INTEGER NOT NULL DEFAULT 0,
    frames_dropped INTEGER,
    resumed_at INTEGER
  )`
  ]
}

/**
 * The same table on PostgreSQL, shared by a cluster's instances, and the
 * batches each session labelled: a batch retried on another instance (the
 * same Idempotency-Key, so the same frame stream message) is labelled once.
 * A session's batches go when the device's next session starts.
 */
export const CAPTURES_PG_SCHEMA: PgAreaSchema = {
  area: 'captures',
  migrations: [
    `CREATE TABLE capture_sessions (
    device integer PRIMARY KEY CHECK (device BETWEEN 0 AND 32767),
    angle double precision NOT NULL,
    started_at bigint NOT NULL,
    ends_at bigint NOT NULL,
    frames_wanted integer,
    source text,
    after_sample bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'finished', 'cancelled', 'interrupted')),
    frames_stored integer NOT NULL DEFAULT 0,
    frames_dropped integer,
    resumed_at bigint
  );
  CREATE TABLE capture_batches (
    device integer NOT NULL,
    batch text NOT NULL,
    PRIMARY KEY (device, batch)
  );`
  ]
}
