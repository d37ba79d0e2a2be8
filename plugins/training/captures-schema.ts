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
