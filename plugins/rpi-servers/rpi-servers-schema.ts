import type { PgAreaSchema } from '../../core/postgres.js'
import type { AreaSchema } from '../../core/storage.js'

/**
 * The rpi-servers area's tables: the Pis (registry.ts) and their frames
 * (frame-store.ts), migrated by the area's plugin (index.ts).
 */
export const RPI_SERVERS_SCHEMA: AreaSchema = {
  area: 'rpi-servers',
  migrations: [
    // every Pi ever heard from; times are epoch milliseconds
    `CREATE TABLE rpi_devices (
    id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 32767),
    name TEXT NOT NULL,
    addr TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    keep_alives INTEGER NOT NULL DEFAULT 1
  )`,
    // unlabelled frames as posted; not tied to rpi_devices, a Pi may post before its first keep-alive
    `CREATE TABLE rpi_frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 32767),
    received_at INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    features BLOB NOT NULL
  )`,
    'CREATE INDEX rpi_frames_device ON rpi_frames (device, id)',
    // retention prunes by age
    'CREATE INDEX rpi_frames_received ON rpi_frames (received_at)',
    // the name a user gave the door (PATCH /doors/{id}); NULL = the Pi's own NAME, which keep-alives keep overwriting
    'ALTER TABLE rpi_devices ADD COLUMN display_name TEXT',
    // what a frame's `features` BLOB holds (frame-store.ts): 0 = its 106 features as float32, platform byte order (every
    // row stored before this migration, and frames posted as features); 1 = a raw frame's signed 8-bit values as received
    // (108 for a Pi frame, 128 for an ESP32 buffer: a quarter of the room), its features recomputed exactly from them.
    // No CHECK: SQLite would test one against every row already stored, where a plain ADD COLUMN is instant on any table
    'ALTER TABLE rpi_frames ADD COLUMN layout INTEGER NOT NULL DEFAULT 0'
  ]
}

/**
 * The same area's tables in PostgreSQL (a cluster's `DATABASE_URL`), so far
 * the Pis only: the columns of `rpi_devices` above, as they are after its
 * last migration. Migrated by device-rows.ts (`PostgresDeviceRows.open`).
 */
export const RPI_SERVERS_PG_SCHEMA: PgAreaSchema = {
  area: 'rpi-servers',
  migrations: [
    // every Pi ever heard from; times are epoch milliseconds (bigint: they overflow integer); keep_alives bigint as SQLite's INTEGER
    `CREATE TABLE rpi_devices (
    id integer PRIMARY KEY CHECK (id BETWEEN 0 AND 32767),
    name text NOT NULL,
    addr text NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    keep_alives bigint NOT NULL DEFAULT 1,
    display_name text
  )`
  ]
}
