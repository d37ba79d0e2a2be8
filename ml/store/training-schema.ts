import type { PgAreaSchema } from '../../core/postgres.js'
import type { AreaSchema } from '../../core/storage.js'

/** The training area's tables: the labelled samples and the CSV imports, migrated by SampleStore. */
export const TRAINING_SCHEMA: AreaSchema = {
  area: 'training',
  migrations: [
    `CREATE TABLE training_samples (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('csi', 'rssi')),
    angle REAL NOT NULL,
    features BLOB NOT NULL,
    device INTEGER,
    source TEXT NOT NULL,
    recorded_at TEXT NOT NULL
  );
  CREATE INDEX training_samples_by_kind ON training_samples (kind, id);`,
    // a door's calibration: its samples of one source, counted per angle
    'CREATE INDEX training_samples_by_device ON training_samples (device, source, kind, angle)',
    // one row per CSV import, with the hash of its content: the same file twice for one device is refused
    `CREATE TABLE training_imports (
    id INTEGER PRIMARY KEY,
    device INTEGER,
    content_sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    imported_at TEXT NOT NULL
  );
  CREATE INDEX training_imports_by_content ON training_imports (content_sha256, device);
  ALTER TABLE training_samples ADD COLUMN import_id INTEGER;
  CREATE INDEX training_samples_by_import ON training_samples (import_id) WHERE import_id IS NOT NULL;`
  ]
}

/**
 * The same tables on PostgreSQL (the cluster's shared samples): one
 * migration with the shape the SQLite ones reached, ids from identity
 * columns (their order is the insertion order the blocked split relies on),
 * features as bytea.
 */
export const TRAINING_PG_SCHEMA: PgAreaSchema = {
  area: 'training',
  migrations: [
    `CREATE TABLE training_imports (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device integer,
    content_sha256 text NOT NULL,
    rows integer NOT NULL,
    imported_at text NOT NULL
  );
  CREATE INDEX training_imports_by_content ON training_imports (content_sha256, device);
  CREATE TABLE training_samples (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('csi', 'rssi')),
    angle double precision NOT NULL,
    features bytea NOT NULL,
    device integer,
    source text NOT NULL,
    recorded_at text NOT NULL,
    import_id integer
  );
  CREATE INDEX training_samples_by_kind ON training_samples (kind, id);
  CREATE INDEX training_samples_by_device ON training_samples (device, source, kind, angle);
  CREATE INDEX training_samples_by_import ON training_samples (import_id) WHERE import_id IS NOT NULL;`
  ]
}
