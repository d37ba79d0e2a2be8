import type { PgAreaSchema } from '../../core/postgres.js'
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

/**
 * The same area's tables in PostgreSQL (a cluster's `DATABASE_URL`), as
 * they are after the last migration above, with what a shared database adds:
 *
 * - `model_versions.seq`, the insertion order SQLite's rowid gives
 *   (`recorded()` lists in it);
 * - `model_trainings.instance`, the instance that runs a training, so that
 *   one starting up marks only its own left "running" (others may be live);
 * - `model_catalogue_changes`, one counter that every change of
 *   `model_versions` bumps (a trigger, whoever writes): what
 *   `changedElsewhere()` reads, in place of SQLite's `PRAGMA data_version`.
 *
 * Times stay ISO-8601 text and the names `COLLATE "C"`, so that they sort as
 * SQLite sorts them (byte order) whatever the database's collation.
 * Migrated by version-catalogue.ts and training-log.ts (their Postgres `open`).
 */
export const MODEL_PG_SCHEMA: PgAreaSchema = {
  area: 'model',
  migrations: [
    `CREATE TABLE model_versions (
    version text COLLATE "C" PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind text NOT NULL CHECK (kind IN ('csi', 'rssi')),
    created_at text COLLATE "C" NOT NULL,
    labels text NOT NULL,
    accuracy double precision,
    training_seconds double precision NOT NULL,
    weights_sha256 text NOT NULL,
    activated_at text COLLATE "C",
    device integer CHECK (device BETWEEN 0 AND 32767),
    gate_passed boolean,
    gate_score double precision,
    gate_refused_by text CHECK (gate_refused_by IN ('evaluation', 'self-check', 'floor'))
  );
  CREATE TABLE model_active (
    kind text PRIMARY KEY CHECK (kind IN ('csi', 'rssi')),
    version text COLLATE "C" NOT NULL REFERENCES model_versions (version)
  );
  CREATE TABLE door_model_active (
    device integer PRIMARY KEY CHECK (device BETWEEN 0 AND 32767),
    version text COLLATE "C" NOT NULL REFERENCES model_versions (version)
  );
  CREATE TABLE model_trainings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text NOT NULL,
    kind text NOT NULL,
    instance text NOT NULL,
    started_at text NOT NULL,
    ended_at text,
    status text NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    seconds double precision,
    message text
  );
  CREATE INDEX model_trainings_running ON model_trainings (instance) WHERE status = 'running';
  CREATE TABLE model_catalogue_changes (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    changes bigint NOT NULL
  );
  INSERT INTO model_catalogue_changes (changes) VALUES (0);
  CREATE FUNCTION model_catalogue_changed () RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    UPDATE model_catalogue_changes SET changes = changes + 1;
    RETURN NULL;
  END $$;
  CREATE TRIGGER model_versions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION model_catalogue_changed ();`
  ]
}
