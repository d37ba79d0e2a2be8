/**
 * The catalogue of model versions: one `model_versions` row per written
 * version and the active one per kind (`model_active`) and per door
 * (`door_model_active`). No file I/O: whether a recorded version's folder is
 * still usable is for the caller (see version-files.ts) to decide.
 *
 * Two stores behind one interface ({@link VersionCatalogue}): the SQLite
 * tables of `MODEL_SCHEMA` in DATA_DIR (the embedded default, migrated by
 * ModelStore before it builds this), and the PostgreSQL tables of
 * `MODEL_PG_SCHEMA` (a cluster's `DATABASE_URL`, shared by every instance,
 * each with its own version folders), migrated by
 * `ModelStore.openPostgresTables`. Every method returns a promise;
 * SQLite's have done their work when they return it.
 */
import type Database from 'better-sqlite3'
import type { Postgres } from '../../core/postgres.js'
import type { ModelKind, ModelVersionInfo } from '../../schemas/model.js'
import { isDoorMeta } from '../model-types.js'
import { verdictOf } from '../door/calibration.js'
import type { VersionMetaFile } from './version-files.js'

/** A recorded version and the weights hash the database holds for it. */
export interface RecordedVersion {
  version: string
  weightsSha256: string
}

/** The catalogue's tables, on either engine (see the module comment). */
export interface VersionCatalogue {
  /**
   * Whether the rows are shared by instances that each keep their own
   * version folders (PostgreSQL), rather than being those of this DATA_DIR's
   * folders alone (SQLite). On a shared catalogue a row whose folder is not
   * here is another instance's version, not a broken one, and the active
   * versions are the cluster's, not this instance's to repair.
   */
  readonly shared: boolean
  /**
   * Whether versions may have been recorded by someone else since the last
   * call (the first call answers true): whether the caller must read
   * {@link recorded} again. SQLite: another connection committed; PostgreSQL:
   * `model_versions` changed at all (see {@link PostgresVersionCatalogue}).
   */
  changedElsewhere (): Promise<boolean>
  /**
   * Records a version (not active) from its meta file.
   * @throws when the name is recorded already (a UNIQUE / unique constraint error)
   */
  insert (file: VersionMetaFile): Promise<void>
  /**
   * Records a version unless its name is recorded already (by another
   * instance of a cluster, say), in which case the row is left as it is.
   * @returns the weights hash the row holds: the file's own unless another one was recorded first
   */
  insertIfAbsent (file: VersionMetaFile): Promise<string>
  /** Whether a row has this name. */
  has (version: string): Promise<boolean>
  /** Every recorded version, in insertion order. */
  recorded (): Promise<RecordedVersion[]>
  /**
   * Makes `version` the active one of `kind` (or, for a door-scope version,
   * of its door) and stamps when, in one transaction (never the stamp
   * without the switch).
   * @throws when `version` is not recorded (a FOREIGN KEY / foreign key constraint error)
   */
  activate (version: string, kind: ModelKind): Promise<void>
  /** The door a door-scope version belongs to; undefined for a global one (or an unknown name). */
  deviceOf (version: string): Promise<number | undefined>
  /** Each door's active version, whether or not its folder is usable. */
  activeDoorVersions (): Promise<Map<number, string>>
  /** The door falls back to the global model: it has no active version of its own any more. */
  deactivateDoor (device: number): Promise<void>
  /** Versions of a door that were ever activated, latest activation first. */
  previouslyActiveForDoor (device: number): Promise<string[]>
  /**
   * Points `kind` back at an earlier version without stamping it (it is a
   * fallback, not a new activation), or at none when `version` is undefined.
   */
  fallBack (kind: ModelKind, version: string | undefined): Promise<void>
  /** Global versions of `kind` that were ever activated, latest activation first. */
  previouslyActive (kind: ModelKind): Promise<string[]>
  /** The active version of a kind, whether or not its folder is usable. */
  activeVersion (kind: ModelKind): Promise<string | undefined>
  /** A version's row, or undefined. */
  info (version: string): Promise<ModelVersionInfo | undefined>
  /** Recorded versions (of one kind, or all), newest first. */
  list (kind?: ModelKind): Promise<ModelVersionInfo[]>
}

/** A row's columns as both engines give them to {@link toInfo}. */
interface InfoRow {
  version: string
  kind: ModelKind
  created_at: string
  labels: string
  accuracy: number | null
  training_seconds: number
  weights_sha256: string
  device: number | null
  gate_passed: boolean | null
  gate_score: number | null
  gate_refused_by: 'evaluation' | 'self-check' | 'floor' | null
  /** Whether it is its kind's (or its door's) active version. */
  active: boolean
}

/**
 * The values of a new row, in the order of {@link INSERT_COLUMNS};
 * `gatePassed` as the engine stores a boolean (SQLite: 1 or 0).
 */
function rowValues (file: VersionMetaFile, gatePassed: (passed: boolean) => boolean | number): unknown[] {
  const { meta } = file
  // a door model's headline figure is its door-state accuracy, the one a user sees
  const accuracy = isDoorMeta(meta) ? (meta.evaluation as { doorState?: { accuracy?: number } } | undefined)?.doorState?.accuracy : meta.evaluation?.accuracy
  const gate = isDoorMeta(meta) ? verdictOf(meta) : undefined
  return [
    file.version, file.kind, file.createdAt, JSON.stringify(meta.labels),
    accuracy ?? null, meta.trainingSeconds, file.weightsSha256, file.device ?? null,
    gate ? gatePassed(gate.activate) : null, gate?.balancedAccuracy ?? null, gate?.refusedBy ?? null
  ]
}

const INSERT_COLUMNS = 'version, kind, created_at, labels, accuracy, training_seconds, weights_sha256, device, gate_passed, gate_score, gate_refused_by'

function toInfo (row: InfoRow): ModelVersionInfo {
  const info: ModelVersionInfo = {
    version: row.version,
    kind: row.kind,
    createdAt: row.created_at,
    active: row.active,
    labels: JSON.parse(row.labels) as number[],
    trainingSeconds: row.training_seconds,
    weightsSha256: row.weights_sha256,
    scope: row.device === null ? 'global' : 'door'
  }
  if (row.device !== null) info.device = row.device
  // absent, not null: the API schema has accuracy optional
  if (row.accuracy !== null) info.accuracy = row.accuracy
  if (row.gate_passed !== null) {
    const gate: NonNullable<ModelVersionInfo['gate']> = { passed: row.gate_passed }
    if (row.gate_score !== null) gate.balancedAccuracy = row.gate_score
    if (row.gate_refused_by !== null) gate.refusedBy = row.gate_refused_by
    info.gate = gate
  }
  return info
}

interface SqliteVersionRow extends Omit<InfoRow, 'gate_passed' | 'active'> {
  activated_at: string | null
  gate_passed: 0 | 1 | null
}

/**
 * The catalogue in the service's SQLite database (`MODEL_SCHEMA`): the
 * versions of this DATA_DIR, whose folders lie beside it.
 */
export class SqliteVersionCatalogue implements VersionCatalogue {
  readonly shared = false
  readonly #db: Database.Database
  #dataVersion: number | undefined

  /** @param db a database `MODEL_SCHEMA` is migrated on */
  constructor (db: Database.Database) {
    this.#db = db
  }

  /**
   * Whether another connection (another process on the same DATA_DIR, or
   * another handle in this one) committed to the database since the last
   * call: SQLite's `PRAGMA data_version`, which this connection's own writes
   * leave alone. The first call answers true.
   */
  async changedElsewhere (): Promise<boolean> {
    const now = this.#db.pragma('data_version', { simple: true }) as number
    const changed = now !== this.#dataVersion
    this.#dataVersion = now
    return changed
  }

  async insert (file: VersionMetaFile): Promise<void> {
    this.#insert(file, '')
  }

  async insertIfAbsent (file: VersionMetaFile): Promise<string> {
    this.#insert(file, ' ON CONFLICT (version) DO NOTHING')
    return (this.#db.prepare('SELECT weights_sha256 FROM model_versions WHERE version = ?').get(file.version) as { weights_sha256: string }).weights_sha256
  }

  #insert (file: VersionMetaFile, onConflict: string): void {
    this.#db.prepare(`INSERT INTO model_versions (${INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)${onConflict}`)
      .run(...rowValues(file, (passed) => passed ? 1 : 0))
  }

  async has (version: string): Promise<boolean> {
    return this.#db.prepare('SELECT 1 FROM model_versions WHERE version = ?').get(version) !== undefined
  }

  async recorded (): Promise<RecordedVersion[]> {
    const rows = this.#db.prepare('SELECT * FROM model_versions').all() as SqliteVersionRow[]
    return rows.map((row) => ({ version: row.version, weightsSha256: row.weights_sha256 }))
  }

  async activate (version: string, kind: ModelKind): Promise<void> {
    const device = this.#deviceOf(version)
    this.#db.transaction(() => {
      this.#db.prepare('UPDATE model_versions SET activated_at = ? WHERE version = ?').run(new Date().toISOString(), version)
      if (device === undefined) {
        this.#db.prepare('INSERT INTO model_active (kind, version) VALUES (?, ?) ' +
          'ON CONFLICT (kind) DO UPDATE SET version = excluded.version').run(kind, version)
      } else {
        this.#db.prepare('INSERT INTO door_model_active (device, version) VALUES (?, ?) ' +
          'ON CONFLICT (device) DO UPDATE SET version = excluded.version').run(device, version)
      }
    })()
  }

  async deviceOf (version: string): Promise<number | undefined> {
    return this.#deviceOf(version)
  }

  #deviceOf (version: string): number | undefined {
    const row = this.#db.prepare('SELECT device FROM model_versions WHERE version = ?').get(version) as { device: number | null } | undefined
    return row?.device ?? undefined
  }

  async activeDoorVersions (): Promise<Map<number, string>> {
    const rows = this.#db.prepare('SELECT device, version FROM door_model_active').all() as Array<{ device: number, version: string }>
    return new Map(rows.map((row) => [row.device, row.version]))
  }

  async deactivateDoor (device: number): Promise<void> {
    this.#db.prepare('DELETE FROM door_model_active WHERE device = ?').run(device)
  }

  async previouslyActiveForDoor (device: number): Promise<string[]> {
    const rows = this.#db.prepare(
      'SELECT version FROM model_versions WHERE device = ? AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC'
    ).all(device) as Array<{ version: string }>
    return rows.map((row) => row.version)
  }

  async fallBack (kind: ModelKind, version: string | undefined): Promise<void> {
    if (version === undefined) this.#db.prepare('DELETE FROM model_active WHERE kind = ?').run(kind)
    else this.#db.prepare('UPDATE model_active SET version = ? WHERE kind = ?').run(version, kind)
  }

  async previouslyActive (kind: ModelKind): Promise<string[]> {
    const rows = this.#db.prepare(
      'SELECT version FROM model_versions WHERE kind = ? AND device IS NULL AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC'
    ).all(kind) as Array<{ version: string }>
    return rows.map((row) => row.version)
  }

  async activeVersion (kind: ModelKind): Promise<string | undefined> {
    return this.#activeVersion(kind)
  }

  #activeVersion (kind: ModelKind): string | undefined {
    const row = this.#db.prepare('SELECT version FROM model_active WHERE kind = ?').get(kind) as { version: string } | undefined
    return row?.version
  }

  async info (version: string): Promise<ModelVersionInfo | undefined> {
    const row = this.#db.prepare('SELECT * FROM model_versions WHERE version = ?').get(version) as SqliteVersionRow | undefined
    return row && this.#toInfo(row)
  }

  async list (kind?: ModelKind): Promise<ModelVersionInfo[]> {
    const rows = (kind === undefined
      ? this.#db.prepare('SELECT * FROM model_versions ORDER BY created_at DESC, version DESC').all()
      : this.#db.prepare('SELECT * FROM model_versions WHERE kind = ? ORDER BY created_at DESC, version DESC').all(kind)) as SqliteVersionRow[]
    return rows.map((row) => this.#toInfo(row))
  }

  #toInfo (row: SqliteVersionRow): ModelVersionInfo {
    const active = row.device === null
      ? this.#activeVersion(row.kind) === row.version
      : this.#db.prepare('SELECT 1 FROM door_model_active WHERE device = ? AND version = ?').get(row.device, row.version) !== undefined
    return toInfo({ ...row, gate_passed: row.gate_passed === null ? null : row.gate_passed === 1, active })
  }
}

const pgBoolean = (passed: boolean): boolean => passed

/** Each version's columns and whether it is active, in one statement (SQLite's store asks the latter row by row). */
const PG_INFO = `SELECT v.version, v.kind, v.created_at, v.labels, v.accuracy, v.training_seconds, v.weights_sha256, v.device,
    v.gate_passed, v.gate_score, v.gate_refused_by,
    CASE WHEN v.device IS NULL
      THEN EXISTS (SELECT 1 FROM model_active a WHERE a.kind = v.kind AND a.version = v.version)
      ELSE EXISTS (SELECT 1 FROM door_model_active d WHERE d.device = v.device AND d.version = v.version)
    END AS active
  FROM model_versions v`

/**
 * The catalogue in PostgreSQL (`MODEL_PG_SCHEMA`), shared by every instance
 * of a cluster: the same rows and answers as {@link SqliteVersionCatalogue},
 * while each instance keeps the folders of the versions it has in its own
 * DATA_DIR ({@link VersionCatalogue.shared}).
 *
 * {@link changedElsewhere}: SQLite's `data_version` has no PostgreSQL
 * counterpart, and answering "always" would have every read of ModelStore
 * read every row again. So a statement-level trigger bumps one counter
 * (`model_catalogue_changes`) whenever `model_versions` changes, whoever
 * writes (another instance, psql), and this compares it with the value it
 * saw last: one single-row read per call. Unlike `data_version` it counts
 * this instance's own writes too, which costs the caller one needless re-read
 * of the rows after each of them, never a missed change.
 */
export class PostgresVersionCatalogue implements VersionCatalogue {
  readonly shared = true
  readonly #pg: Postgres
  #changes: string | undefined

  /** @param pg a database `MODEL_PG_SCHEMA` is migrated on (ModelStore.openPostgresTables) */
  constructor (pg: Postgres) {
    this.#pg = pg
  }

  async changedElsewhere (): Promise<boolean> {
    const { rows } = await this.#pg.query<{ changes: string }>('SELECT changes FROM model_catalogue_changes')
    const now = rows[0].changes
    const changed = now !== this.#changes
    this.#changes = now
    return changed
  }

  async insert (file: VersionMetaFile): Promise<void> {
    await this.#pg.query(`INSERT INTO model_versions (${INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, rowValues(file, pgBoolean))
  }

  async insertIfAbsent (file: VersionMetaFile): Promise<string> {
    // DO NOTHING returns no row on a conflict: the one there is read after it (it cannot go: rows are never deleted)
    const inserted = await this.#pg.query<{ weights_sha256: string }>(`INSERT INTO model_versions (${INSERT_COLUMNS})
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (version) DO NOTHING RETURNING weights_sha256`, rowValues(file, pgBoolean))
    if (inserted.rows.length > 0) return inserted.rows[0].weights_sha256
    const { rows } = await this.#pg.query<{ weights_sha256: string }>('SELECT weights_sha256 FROM model_versions WHERE version = $1', [file.version])
    return rows[0].weights_sha256
  }

  async has (version: string): Promise<boolean> {
    const { rows } = await this.#pg.query('SELECT 1 FROM model_versions WHERE version = $1', [version])
    return rows.length > 0
  }

  async recorded (): Promise<RecordedVersion[]> {
    const { rows } = await this.#pg.query<{ version: string, weights_sha256: string }>('SELECT version, weights_sha256 FROM model_versions ORDER BY seq')
    return rows.map((row) => ({ version: row.version, weightsSha256: row.weights_sha256 }))
  }

  async activate (version: string, kind: ModelKind): Promise<void> {
    await this.#pg.transaction(async (client) => {
      const { rows } = await client.query<{ device: number | null }>(
        'UPDATE model_versions SET activated_at = $2 WHERE version = $1 RETURNING device', [version, new Date().toISOString()])
      const device = rows[0]?.device ?? null
      if (device === null) {
        await client.query('INSERT INTO model_active (kind, version) VALUES ($1, $2) ' +
          'ON CONFLICT (kind) DO UPDATE SET version = excluded.version', [kind, version])
      } else {
        await client.query('INSERT INTO door_model_active (device, version) VALUES ($1, $2) ' +
          'ON CONFLICT (device) DO UPDATE SET version = excluded.version', [device, version])
      }
    })
  }

  async deviceOf (version: string): Promise<number | undefined> {
    const { rows } = await this.#pg.query<{ device: number | null }>('SELECT device FROM model_versions WHERE version = $1', [version])
    return rows[0]?.device ?? undefined
  }

  async activeDoorVersions (): Promise<Map<number, string>> {
    const { rows } = await this.#pg.query<{ device: number, version: string }>('SELECT device, version FROM door_model_active')
    return new Map(rows.map((row) => [row.device, row.version]))
  }

  async deactivateDoor (device: number): Promise<void> {
    await this.#pg.query('DELETE FROM door_model_active WHERE device = $1', [device])
  }

  async previouslyActiveForDoor (device: number): Promise<string[]> {
    const { rows } = await this.#pg.query<{ version: string }>(
      'SELECT version FROM model_versions WHERE device = $1 AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC', [device])
    return rows.map((row) => row.version)
  }

  async fallBack (kind: ModelKind, version: string | undefined): Promise<void> {
    if (version === undefined) await this.#pg.query('DELETE FROM model_active WHERE kind = $1', [kind])
    else await this.#pg.query('UPDATE model_active SET version = $2 WHERE kind = $1', [kind, version])
  }

  async previouslyActive (kind: ModelKind): Promise<string[]> {
    const { rows } = await this.#pg.query<{ version: string }>('SELECT version FROM model_versions ' +
      'WHERE kind = $1 AND device IS NULL AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC', [kind])
    return rows.map((row) => row.version)
  }

  async activeVersion (kind: ModelKind): Promise<string | undefined> {
    const { rows } = await this.#pg.query<{ version: string }>('SELECT version FROM model_active WHERE kind = $1', [kind])
    return rows[0]?.version
  }

  async info (version: string): Promise<ModelVersionInfo | undefined> {
    const { rows } = await this.#pg.query<InfoRow>(`${PG_INFO} WHERE v.version = $1`, [version])
    return rows.length > 0 ? toInfo(rows[0]) : undefined
  }

  async list (kind?: ModelKind): Promise<ModelVersionInfo[]> {
    const { rows } = kind === undefined
      ? await this.#pg.query<InfoRow>(`${PG_INFO} ORDER BY v.created_at DESC, v.version DESC`)
      : await this.#pg.query<InfoRow>(`${PG_INFO} WHERE v.kind = $1 ORDER BY v.created_at DESC, v.version DESC`, [kind])
    return rows.map(toInfo)
  }
}
