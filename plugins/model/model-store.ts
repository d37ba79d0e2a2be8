/**
 * Model versions on disk and in SQLite. A version is a folder
 * `DATA_DIR/models/<version>/` holding `model.json` (tfjs layers format),
 * `weights.bin` and `meta.json` (standardisation statistics, labels, options,
 * evaluation, the weights' SHA-256). It is written into a temp folder, synced,
 * and renamed into place, so a crash at any moment leaves the old set of
 * versions or the new one, never a half-written version; start-up removes the
 * temp leftovers. Which version is active, and every training run, is
 * recorded in SQLite.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type * as tfjs from '@tensorflow/tfjs'
import type { Storage } from '../../core/storage.js'
import type { ModelKind, ModelVersionInfo, TrainingFailure } from '../../schemas/model.js'
import type { ModelMeta, TrainedModel } from './trainer.js'

/** Folder of the versions inside DATA_DIR. */
export const MODELS_DIR = 'models'
/** Prefix of a version folder still being written. */
export const TEMP_PREFIX = '.tmp-'
export const MODEL_FILE = 'model.json'
export const WEIGHTS_FILE = 'weights.bin'
export const META_FILE = 'meta.json'

/** What a version name looks like (also keeps path parameters out of other folders). */
export const VERSION_PATTERN = /^[a-z0-9][a-z0-9-]{0,79}$/

/** The model area's tables; the list only grows at its end. */
export const MODEL_MIGRATIONS: readonly string[] = [
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
  );`
]

/** The contents of a version's meta.json. */
export interface VersionMetaFile {
  version: string
  kind: ModelKind
  createdAt: string
  weightsFile: string
  weightsSha256: string
  meta: ModelMeta
}

/** A version read back from disk, verified. */
export interface LoadedVersion {
  info: ModelVersionInfo
  artifacts: tfjs.io.ModelArtifacts
  meta: ModelMeta
}

/** What start-up found and did. */
export interface RecoveryReport {
  /** Temp folders of interrupted writes, removed. */
  removedTemp: string[]
  /** Complete folders written just before a crash (no row yet), now listed, not active. */
  adopted: string[]
  /** Folders or rows that do not verify: ignored, never loaded. */
  broken: Array<{ version: string, reason: string }>
  /** Kinds whose active version was broken and which fell back to an older one (or to none). */
  fellBack: Array<{ kind: ModelKind, from: string, to: string | undefined }>
  /** Trainings that were running when the process died. */
  interrupted: TrainingFailure[]
}

interface VersionRow {
  version: string
  kind: ModelKind
  created_at: string
  labels: string
  accuracy: number | null
  training_seconds: number
  weights_sha256: string
  activated_at: string | null
}

interface TrainingRow {
  id: number
  version: string
  started_at: string
  ended_at: string | null
  status: 'running' | 'finished' | 'failed' | 'interrupted'
  seconds: number | null
  message: string | null
}

/** The versions, their files and their rows. */
export class ModelStore {
  readonly modelsDir: string
  readonly #db: Storage['db']
  /** Versions whose folder verified (at start or when written). */
  readonly #metas = new Map<string, VersionMetaFile>()

  constructor (storage: Storage, dataDir: string) {
    storage.migrate('model', MODEL_MIGRATIONS)
    this.#db = storage.db
    this.modelsDir = join(dataDir, MODELS_DIR)
    mkdirSync(this.modelsDir, { recursive: true })
  }

  /**
   * Start-up: removes temp folders, verifies every version, adopts complete
   * folders that a crash left without a row, falls back from a broken active
   * version to the last good one, and marks trainings left "running" as
   * interrupted. Call once, before anything else.
   */
  recover (): RecoveryReport {
    const report: RecoveryReport = { removedTemp: [], adopted: [], broken: [], fellBack: [], interrupted: [] }
    const folders = readdirSync(this.modelsDir)
    for (const name of folders) {
      if (!name.startsWith(TEMP_PREFIX)) continue
      rmSync(join(this.modelsDir, name), { recursive: true, force: true })
      report.removedTemp.push(name)
    }
    const rows = this.#db.prepare('SELECT * FROM model_versions').all() as VersionRow[]
    const known = new Set(rows.map((row) => row.version))
    for (const row of rows) {
      const verified = this.#verify(row.version, row.weights_sha256)
      if (typeof verified === 'string') report.broken.push({ version: row.version, reason: verified })
      else this.#metas.set(row.version, verified)
    }
    for (const name of folders) {
      if (name.startsWith(TEMP_PREFIX) || known.has(name) || !VERSION_PATTERN.test(name)) continue
      if (!statSync(join(this.modelsDir, name)).isDirectory()) continue
      const verified = this.#verify(name)
      if (typeof verified === 'string') {
        report.broken.push({ version: name, reason: verified })
        continue
      }
      this.#insertRow(verified)
      this.#metas.set(name, verified)
      report.adopted.push(name)
    }
    for (const kind of ['csi', 'rssi'] as const) {
      const active = this.activeVersion(kind, false)
      if (active === undefined || this.#metas.has(active)) continue
      const fallback = this.#db.prepare(
        'SELECT version FROM model_versions WHERE kind = ? AND activated_at IS NOT NULL ORDER BY activated_at DESC, version DESC'
      ).all(kind) as Array<{ version: string }>
      const to = fallback.map((row) => row.version).find((version) => this.#metas.has(version))
      if (to === undefined) this.#db.prepare('DELETE FROM model_active WHERE kind = ?').run(kind)
      else this.#db.prepare('UPDATE model_active SET version = ? WHERE kind = ?').run(to, kind)
      report.fellBack.push({ kind, from: active, to })
    }
    const running = this.#db.prepare("SELECT * FROM model_trainings WHERE status = 'running'").all() as TrainingRow[]
    const now = new Date().toISOString()
    for (const row of running) {
      const message = `training of ${row.version} (started ${row.started_at}) was interrupted: the server stopped or crashed while it ran`
      this.#db.prepare("UPDATE model_trainings SET status = 'interrupted', ended_at = ?, message = ? WHERE id = ?").run(now, message, row.id)
      report.interrupted.push({ at: now, message, version: row.version })
    }
    return report
  }

  /** A fresh version name: kind and UTC time to the millisecond, e.g. `csi-20251125-183700-123`. */
  newVersionName (kind: ModelKind, at = new Date()): string {
    const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').replace('Z', '')
    const base = `${kind}-${stamp}`
    let version = base
    for (let n = 2; this.#taken(version); n++) version = `${base}-${n}`
    return version
  }

  /**
   * Writes a trained model as a new, not yet active, version: temp folder,
   * fsync, rename, then the row. Crash-safe at every step.
   */
  async write (version: string, model: TrainedModel, createdAt = new Date()): Promise<ModelVersionInfo> {
    const staged = await this.stage(version, model, createdAt)
    return this.commit(staged)
  }

  /**
   * First half of {@link write}: the complete version in a temp folder
   * (a crash now leaves only that folder, which start-up removes).
   */
  async stage (version: string, model: TrainedModel, createdAt = new Date()): Promise<StagedVersion> {
    if (!VERSION_PATTERN.test(version)) throw new Error(`bad version name ${JSON.stringify(version)}`)
    if (this.#taken(version)) throw new Error(`version ${version} exists already`)
    const weights = joinWeightData(model.artifacts.weightData)
    const file: VersionMetaFile = {
      version,
      kind: model.meta.kind,
      createdAt: createdAt.toISOString(),
      weightsFile: WEIGHTS_FILE,
      weightsSha256: sha256(weights),
      meta: model.meta
    }
    const tempDir = join(this.modelsDir, `${TEMP_PREFIX}${version}-${randomBytes(4).toString('hex')}`)
    await mkdir(tempDir)
    try {
      await writeDurably(join(tempDir, WEIGHTS_FILE), weights)
      await writeDurably(join(tempDir, MODEL_FILE), JSON.stringify(modelJson(model.artifacts)))
      // meta.json last: a folder with a valid meta.json has its other files complete
      await writeDurably(join(tempDir, META_FILE), JSON.stringify(file, null, 2))
      await syncDir(tempDir)
    } catch (err) {
      await rm(tempDir, { recursive: true, force: true })
      throw err
    }
    return { tempDir, file }
  }

  /** Second half of {@link write}: rename into place, sync the parent, record the row. */
  async commit (staged: StagedVersion): Promise<ModelVersionInfo> {
    const { file } = staged
    await rename(staged.tempDir, join(this.modelsDir, file.version))
    await syncDir(this.modelsDir)
    this.#insertRow(file)
    this.#metas.set(file.version, file)
    return this.info(file.version) as ModelVersionInfo
  }

  /** Makes `version` the active one of its kind and records when. */
  activate (version: string): ModelVersionInfo {
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    this.#db.transaction(() => {
      this.#db.prepare('UPDATE model_versions SET activated_at = ? WHERE version = ?').run(new Date().toISOString(), version)
      this.#db.prepare('INSERT INTO model_active (kind, version) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET version = excluded.version').run(file.kind, version)
    })()
    return this.info(version) as ModelVersionInfo
  }

  /** Reads a version's files back, checking the weights against their SHA-256. */
  async load (version: string): Promise<LoadedVersion> {
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    const dir = join(this.modelsDir, version)
    const weights = await readFile(join(dir, file.weightsFile))
    const hash = sha256(weights)
    if (hash !== file.weightsSha256) throw new Error(`model version ${version}: weights SHA-256 is ${hash}, meta.json says ${file.weightsSha256}`)
    const json = JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as ModelJson
    const artifacts: tfjs.io.ModelArtifacts = {
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy
    }
    if (json.trainingConfig) artifacts.trainingConfig = json.trainingConfig
    return { info: this.info(version) as ModelVersionInfo, artifacts, meta: file.meta }
  }

  /** A usable version's row, or undefined. */
  info (version: string): ModelVersionInfo | undefined {
    if (!this.#metas.has(version)) return undefined
    const row = this.#db.prepare('SELECT * FROM model_versions WHERE version = ?').get(version) as VersionRow | undefined
    return row && this.#toInfo(row)
  }

  /** A usable version's meta (standardisation, labels, options, evaluation). */
  meta (version: string): ModelMeta | undefined {
    return this.#metas.get(version)?.meta
  }

  /** Usable versions, newest first. */
  list (kind?: ModelKind): ModelVersionInfo[] {
    const rows = (kind === undefined
      ? this.#db.prepare('SELECT * FROM model_versions ORDER BY created_at DESC, version DESC').all()
      : this.#db.prepare('SELECT * FROM model_versions WHERE kind = ? ORDER BY created_at DESC, version DESC').all(kind)) as VersionRow[]
    return rows.filter((row) => this.#metas.has(row.version)).map((row) => this.#toInfo(row))
  }

  /** The active version of a kind (only usable ones unless `usableOnly` is false). */
  activeVersion (kind: ModelKind, usableOnly = true): string | undefined {
    const row = this.#db.prepare('SELECT version FROM model_active WHERE kind = ?').get(kind) as { version: string } | undefined
    if (!row || (usableOnly && !this.#metas.has(row.version))) return undefined
    return row.version
  }

  /** The folder of a usable version, or undefined (unknown names never reach the file system). */
  versionDir (version: string): string | undefined {
    return this.#metas.has(version) ? join(this.modelsDir, version) : undefined
  }

  /** Records a training that starts now. @returns its id */
  beginTraining (version: string, kind: ModelKind): number {
    const result = this.#db.prepare("INSERT INTO model_trainings (version, kind, started_at, status) VALUES (?, ?, ?, 'running')")
      .run(version, kind, new Date().toISOString())
    return Number(result.lastInsertRowid)
  }

  /** Records how a training ended. */
  endTraining (id: number, status: 'finished' | 'failed' | 'interrupted', seconds: number, message?: string): void {
    this.#db.prepare('UPDATE model_trainings SET status = ?, ended_at = ?, seconds = ?, message = ? WHERE id = ?')
      .run(status, new Date().toISOString(), seconds, message ?? null, id)
  }

  /** The failure of the latest training, if the latest one failed or was interrupted. */
  lastFailure (): TrainingFailure | undefined {
    const row = this.#db.prepare("SELECT * FROM model_trainings WHERE status != 'running' ORDER BY id DESC LIMIT 1").get() as TrainingRow | undefined
    if (!row || row.status === 'finished') return undefined
    return { at: row.ended_at ?? row.started_at, message: row.message ?? `training of ${row.version} ${row.status}`, version: row.version }
  }

  /** Seconds the latest finished training took. */
  lastTrainingSeconds (): number | undefined {
    const row = this.#db.prepare("SELECT seconds FROM model_trainings WHERE status = 'finished' ORDER BY id DESC LIMIT 1").get() as { seconds: number } | undefined
    return row?.seconds
  }

  #taken (version: string): boolean {
    if (existsSync(join(this.modelsDir, version))) return true
    return this.#db.prepare('SELECT 1 FROM model_versions WHERE version = ?').get(version) !== undefined
  }

  #insertRow (file: VersionMetaFile): void {
    this.#db.prepare(`INSERT INTO model_versions (version, kind, created_at, labels, accuracy, training_seconds, weights_sha256)
      VALUES (?, ?, ?, ?, ?, ?, ?)`).run(
      file.version, file.kind, file.createdAt, JSON.stringify(file.meta.labels),
      file.meta.evaluation?.accuracy ?? null, file.meta.trainingSeconds, file.weightsSha256
    )
  }

  #toInfo (row: VersionRow): ModelVersionInfo {
    const info: ModelVersionInfo = {
      version: row.version,
      kind: row.kind,
      createdAt: row.created_at,
      active: this.activeVersion(row.kind, false) === row.version,
      labels: JSON.parse(row.labels) as number[],
      trainingSeconds: row.training_seconds,
      weightsSha256: row.weights_sha256
    }
    if (row.accuracy !== null) info.accuracy = row.accuracy
    return info
  }

  /**
   * Checks a version folder: meta.json readable and naming this version, the
   * other files present, the weights matching their hash (and the row's).
   * @returns the meta file, or why the folder is unusable
   */
  #verify (version: string, expectedSha256?: string): VersionMetaFile | string {
    const dir = join(this.modelsDir, version)
    try {
      const file = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as VersionMetaFile
      if (file.version !== version) return `meta.json names version ${JSON.stringify(file.version)}`
      JSON.parse(readFileSync(join(dir, MODEL_FILE), 'utf8'))
      const hash = sha256(readFileSync(join(dir, file.weightsFile)))
      if (hash !== file.weightsSha256) return `weights SHA-256 ${hash} does not match meta.json`
      if (expectedSha256 !== undefined && hash !== expectedSha256) return `weights SHA-256 ${hash} does not match the database (${expectedSha256})`
      return file
    } catch (err) {
      return (err as Error).message
    }
  }
}

/** A version complete in its temp folder, not yet renamed into place. */
export interface StagedVersion {
  tempDir: string
  file: VersionMetaFile
}

/** The tfjs `model.json` layout (what tf.loadLayersModel reads over HTTP). */
interface ModelJson {
  modelTopology: tfjs.io.ModelArtifacts['modelTopology']
  weightsManifest: Array<{ paths: string[], weights: tfjs.io.WeightsManifestEntry[] }>
  format?: string
  generatedBy?: string
  convertedBy?: string | null
  trainingConfig?: tfjs.io.TrainingConfig
}

function modelJson (artifacts: tfjs.io.ModelArtifacts): ModelJson {
  const json: ModelJson = {
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null
  }
  if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig
  return json
}

/** tfjs may hand the weights as one buffer or as several. */
export function joinWeightData (data: tfjs.io.ModelArtifacts['weightData']): Buffer {
  if (data === undefined) return Buffer.alloc(0)
  const parts = Array.isArray(data) ? data : [data]
  return Buffer.concat(parts.map((part) => Buffer.from(part)))
}

/** Hex SHA-256. */
export function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

async function writeDurably (path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx')
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** fsync a folder, so the names created or renamed in it survive a power cut. */
async function syncDir (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
