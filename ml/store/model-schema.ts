import type { AreaSchema } from '../../core/storage.js'

/**
 * The model area's tables: the versions and the active ones (version-catalogue.ts)
 * and the training log (training-log.ts), migrated by ModelStore.
 */
export const MODEL_SCHEMA: AreaSchema = {
  area: 'model',
  migrations: [
    `CREATE TABLE model_versions (
    version TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('csi', 'rssi')),
    created_at TEXT NOT NULL,
    labels TEXT NOT NULL,
    accuracy REAL,
    training_seconds REAL NOT NULL,
    weights_sha256 TEXT NOT NULL,
    activated_at TEXT
  );
  CREATE TABLE model_active (
    kind TEXT PRIMARY KEY CHECK (kind IN ('csi', 'rssi')),
    version TEXT NOT NULL REFERENCES model_versions (version)
  );
  CREATE TABLE model_trainings (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    seconds REAL,
    message TEXT
  );`,
    // door models: a door-scope version names its device; each door has at most one active version
    `ALTER TABLE model_versions ADD COLUMN device INTEGER CHECK (device BETWEEN 0 AND 32767);
  CREATE TABLE door_model_active (
    device INTEGER PRIMARY KEY CHECK (device BETWEEN 0 AND 32767),
    version TEXT NOT NULL REFERENCES model_versions (version)
  );`,
    // a door version's calibration gate: passed (1) or refused (0), the balanced accuracy it judged and what refused it; NULL for versions made before
    `ALTER TABLE model_versions ADD COLUMN gate_passed INTEGER CHECK (gate_passed IN (0, 1));
  ALTER TABLE model_versions ADD COLUMN gate_score REAL;
  ALTER TABLE model_versions ADD COLUMN gate_refused_by TEXT CHECK (gate_refused_by IN ('evaluation', 'self-check', 'floor'));`
  ]
}
