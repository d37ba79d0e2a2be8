/**
 * The SQLite catalogue of model versions: one `model_versions` row per
 * written version and, per kind, the active one in `model_active`. No file
 * I/O: whether a recorded version's folder is still usable is for the caller
 * (see version-files.ts) to decide. The tables are the model area's
 * (`MODEL_SCHEMA`, model-schema.ts), which ModelStore migrates before it builds this.
 */
import type Database from 'better-sqlite3'
import type { ModelKind, ModelVersionInfo } from '../../schemas/model.js'
import { isDoorMeta } from '../model-types.js'
import { verdictOf } from '../door/calibration.js'
import type { VersionMetaFile } from './version-files.js'

interface VersionRow {
  version: string
  kind: ModelKind
  created_at: string
  labels: string
  accuracy: number | null
  training_seconds: number
  weights_sha256: string
  activated_at: string | null
  device: number | null
  gate_passed: 0 | 1 | null
  gate_score: number | null
  gate_refused_by: 'evaluation' | 'self-check' | 'floor' | null
}

/** A recorded version and the weights hash the database holds for it. */
export interface RecordedVersion {
  version: string
  weightsSha256: string
}

/** The `model_versions` and `model_active` tables. */
export class VersionCatalogue {
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
  changedElsewhere (): boolean {
    const now = this.#db.pragma('data_version', { simple: true }) as number
    const changed = now !== this.#dataVersion
    this.#dataVersion = now
    return changed
  }

  /** Records a version (not active) from its meta file. */
  insert (file: VersionMetaFile): void {
    const { meta } = file
    // a door model's headline figure is its door-state accuracy, the one a user sees
    const accuracy = isDoorMeta(meta) ? (meta.evaluation as { doorState?: { accuracy?: number } } | undefined)?.doorState?.accuracy : meta.evaluation?.accuracy
    const gate = isDoorMeta(meta) ? verdictOf(meta) : undefined
    this.#db.prepare('INSERT INTO model_versions (version, kind, created_at, labels, accuracy, training_seconds, weights_sha256, ' +
      `device, gate_passed, gate_score, gate_refused_by)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      file.version, file.kind, file.createdAt, JSON.stringify(meta.labels),
      accuracy ?? null, meta.trainingSeconds, file.weightsSha256, file.device ?? null,
      gate ? (gate.activate ? 1 : 0) : null, gate?.balancedAccuracy ?? null, gate?.refusedBy ?? null
    )
  }

  /** Whether a row has this name. */
  has (version: string): boolean {
    return this.#db.prepare('SELECT 1 FROM model_versions WHERE version = ?').get(version) !== undefined
  }

  /** Every recorded version, in insertion order. */
  recorded (): RecordedVersion[] {
    const rows = this.#db.prepare('SELECT * FROM model_versions').all() as VersionRow[]
    return rows.map((row) => ({ version: row.version, weightsSha256: row.weights_sha256 }))
  }

  /**
   * Makes `version` the active one of `kind` and stamps when, in one
   * transaction (a crash never leaves the stamp without the switch).
   */
  activate (version: string, kind: ModelKind): void {
    const device = this.deviceOf(version)
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

  /** The door a door-scope version belongs to; undefined for a global one. */
  deviceOf (version: string): number | undefined {
    const row = this.#db.prepare('SELECT device FROM model_versions WHERE version = ?').get(version) as { device: number | null } | undefined
    return row?.device ?? undefined
  }

  /** Each door's active version, whether or not its folder is usable. */
  activeDoorVersions (): Map<number, string> {
    const rows = this.#db.prepare('SELECT device, version FROM door_model_active').all() as Array<{ device: number, version: string }>
    return new Map(rows.map((row) => [row.device, row.version]))
  }

  /** The door falls back to the global model: it has no active version of its own any more. */
  deactivateDoor (device: number): void {
    this.#db.prepare('DELETE FROM door_model_active WHERE device = ?').run(device)
  }

  /** Versions of a door that were ever activated, latest activation first. */
  previouslyActiveForDoor (device: number): string[] {
    const rows = this.#db.prepare(
      'SELECT version FROM model_versions WHERE device = ? AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC'
    ).all(device) as Array<{ version: string }>
    return rows.map((row) => row.version)
  }

  /**
   * Points `kind` back at an earlier version without stamping it (it is a
   * fallback, not a new activation), or at none when `version` is undefined.
   */
  fallBack (kind: ModelKind, version: string | undefined): void {
    if (version === undefined) this.#db.prepare('DELETE FROM model_active WHERE kind = ?').run(kind)
    else this.#db.prepare('UPDATE model_active SET version = ? WHERE kind = ?').run(version, kind)
  }

  /** Versions of `kind` that were ever activated, latest activation first. */
  previouslyActive (kind: ModelKind): string[] {
    const rows = this.#db.prepare(
      'SELECT version FROM model_versions WHERE kind = ? AND device IS NULL AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC'
    ).all(kind) as Array<{ version: string }>
    return rows.map((row) => row.version)
  }

  /** The active version of a kind, whether or not its folder is usable. */
  activeVersion (kind: ModelKind): string | undefined {
    const row = this.#db.prepare('SELECT version FROM model_active WHERE kind = ?').get(kind) as { version: string } | undefined
    return row?.version
  }

  /** A version's row, or undefined. */
  info (version: string): ModelVersionInfo | undefined {
    const row = this.#db.prepare('SELECT * FROM model_versions WHERE version = ?').get(version) as VersionRow | undefined
    return row && this.#toInfo(row)
  }

  /** Recorded versions (of one kind, or all), newest first. */
  list (kind?: ModelKind): ModelVersionInfo[] {
    const rows = (kind === undefined
      ? this.#db.prepare('SELECT * FROM model_versions ORDER BY created_at DESC, version DESC').all()
      : this.#db.prepare('SELECT * FROM model_versions WHERE kind = ? ORDER BY created_at DESC, version DESC').all(kind)) as VersionRow[]
    return rows.map((row) => this.#toInfo(row))
  }

  #toInfo (row: VersionRow): ModelVersionInfo {
    const active = row.device === null
      ? this.activeVersion(row.kind) === row.version
      : this.#db.prepare('SELECT 1 FROM door_model_active WHERE device = ? AND version = ?').get(row.device, row.version) !== undefined
    const info: ModelVersionInfo = {
      version: row.version,
      kind: row.kind,
      createdAt: row.created_at,
      active,
      labels: JSON.parse(row.labels) as number[],
      trainingSeconds: row.training_seconds,
      weightsSha256: row.weights_sha256,
      scope: row.device === null ? 'global' : 'door'
    }
    if (row.device !== null) info.device = row.device
    // absent, not null: the API schema has accuracy optional
    if (row.accuracy !== null) info.accuracy = row.accuracy
    if (row.gate_passed !== null) {
      const gate: NonNullable<ModelVersionInfo['gate']> = { passed: row.gate_passed === 1 }
      if (row.gate_score !== null) gate.balancedAccuracy = row.gate_score
      if (row.gate_refused_by !== null) gate.refusedBy = row.gate_refused_by
      info.gate = gate
    }
    return info
  }
}
