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
