/**
 * Model versions on disk and in SQLite. A version is a folder
 * `DATA_DIR/models/<version>/` holding `model.json` (tfjs layers format),
 * `weights.bin` and `meta.json` (standardisation statistics, labels, options,
 * evaluation, the weights' SHA-256). It is written into a temp folder, synced,
 * and renamed into place, so a crash at any moment leaves the old set of
 * versions or the new one, never a half-written version; start-up removes the
 * temp leftovers. Which version is active, and every training run, is
 * recorded in SQLite.
 *
 * This is the facade over four parts, one concern each: the folder format
 * (version-files.ts), the catalogue of versions and the active one
 * (version-catalogue.ts), the training log (training-log.ts) and start-up
 * recovery over them (version-recovery.ts). It migrates the model area's
 * tables (`MODEL_SCHEMA`, model-schema.ts) and knows which versions verified.
 *
 * The database is the truth, whoever wrote it: every read first asks SQLite
 * whether another connection committed since (`PRAGMA data_version`, a
 * microsecond), and if one did, verifies the versions it recorded before
 * they are listed, loaded or activated. A second process on the same
 * DATA_DIR (the CLI, a test handle) can therefore never leave this one with
 * a list that misses its versions or flags the wrong one active.
 */
import { join } from 'node:path'
import type * as tfjs from '@tensorflow/tfjs'
import type { Storage } from '../../core/storage.js'
import type { ModelKind, ModelVersionInfo, TrainingFailure } from '../../schemas/model.js'
import type { DoorModelMeta } from '../door/model-types.js'
import { isDoorMeta, type ModelMeta, type StorableModel, type StoredMeta } from '../model-types.js'
import { MODEL_SCHEMA } from './model-schema.js'
import { TrainingLog } from './training-log.js'
import { VersionCatalogue } from './version-catalogue.js'
import { checkVersionName, fromBundle, MODELS_DIR, VersionFiles, type StagedVersion, type VersionBundle, type VersionMetaFile } from './version-files.js'
import { recoverVersions, type RecoveryReport } from './version-recovery.js'

export {
  joinWeightData, META_FILE, MODEL_FILE, MODELS_DIR, sha256, TEMP_PREFIX, VERSION_PATTERN, WEIGHTS_FILE,
  type StagedVersion, type VersionBundle, type VersionMetaFile
} from './version-files.js'
export type { RecoveryReport } from './version-recovery.js'

/** A version read back from disk, verified. */
export interface LoadedVersion {
  info: ModelVersionInfo
  artifacts: tfjs.io.ModelArtifacts
  meta: StoredMeta
}

/** The versions, their files and their rows. */
export class ModelStore {
  readonly modelsDir: string
  readonly #files: VersionFiles
  readonly #catalogue: VersionCatalogue
  readonly #trainings: TrainingLog
  /** Versions whose folder verified (at start, when written, or when another connection recorded them); the only ones ever loaded or listed. */
  readonly #metas = new Map<string, VersionMetaFile>()
  /** Rows another connection recorded whose folder did not verify, by their weights hash: not verified again until the row changes. */
  readonly #unusable = new Map<string, string>()
  #recovered = false

  constructor (storage: Storage, dataDir: string) {
    storage.migrate(MODEL_SCHEMA)
    this.modelsDir = join(dataDir, MODELS_DIR)
    this.#files = new VersionFiles(this.modelsDir)
    this.#catalogue = new VersionCatalogue(storage.db)
    this.#trainings = new TrainingLog(storage.db)
  }

  /**
   * Start-up: removes temp folders, verifies every version, adopts complete
   * folders that a crash left without a row, falls back from a broken active
   * version to the last good one, and marks trainings left "running" as
   * interrupted. Call once, before anything else.
   */
  recover (): RecoveryReport {
    const report = recoverVersions({ files: this.#files, catalogue: this.#catalogue, trainings: this.#trainings }, this.#metas)
    // what recovery read is current: only commits from elsewhere after this point need a look
    this.#catalogue.changedElsewhere()
    this.#recovered = true
    return report
  }

  /**
   * A fresh version name: kind (or `door<id>` for a door's model) and UTC
   * time to the millisecond, e.g. `csi-20251125-183700-123`, `door5-20251125-183700-123`.
   */
  newVersionName (kind: ModelKind | `door${number}`, at = new Date()): string {
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
  async write (version: string, model: StorableModel, createdAt = new Date(), device?: number): Promise<ModelVersionInfo> {
    const staged = await this.stage(version, model, createdAt, device)
    return this.commit(staged)
  }

  /**
   * First half of {@link write}: the complete version in a temp folder
   * (a crash now leaves only that folder, which start-up removes).
   */
  async stage (version: string, model: StorableModel, createdAt = new Date(), device?: number): Promise<StagedVersion> {
    // the name is checked before it is looked up, so a bad one never reaches the file system
    checkVersionName(version)
    if (this.#taken(version)) throw new Error(`version ${version} exists already`)
    return this.#files.stage(version, model, createdAt, device)
  }

  /** Second half of {@link write}: rename into place, sync the parent, record the row. */
  async commit (staged: StagedVersion): Promise<ModelVersionInfo> {
    const { file } = staged
    await this.#files.commit(staged)
    this.#catalogue.insert(file)
    this.#metas.set(file.version, file)
    return this.info(file.version) as ModelVersionInfo
  }

  /** A usable version's files as bytes, for another instance (see {@link importVersion}). */
  async exportVersion (version: string): Promise<VersionBundle> {
    this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    return this.#files.read(file)
  }

  /**
   * Writes a version another instance made, from its files ({@link exportVersion}
   * there), through the same crash-safe write as a trained one: not active;
   * the weights are checked against the hash its meta.json carries.
   * @throws when the bundle is not whole, or the name is taken
   */
  async importVersion (version: string, bundle: VersionBundle): Promise<ModelVersionInfo> {
    const { file, model } = fromBundle(version, bundle)
    const info = await this.write(version, model, new Date(file.createdAt), file.device)
    if (info.weightsSha256 !== file.weightsSha256) {
      throw new Error(`model version ${version}: written weights SHA-256 ${info.weightsSha256} differ from ${file.weightsSha256}`)
    }
    return info
  }

  /** Each door's active version (usable ones only). */
  activeDoorVersions (): Map<number, string> {
    this.#sync()
    const active = this.#catalogue.activeDoorVersions()
    for (const [device, version] of active) if (!this.#metas.has(version)) active.delete(device)
    return active
  }

  /** The door goes back to the global model; its versions stay listed (and can be activated again). */
  deactivateDoor (device: number): void {
    this.#catalogue.deactivateDoor(device)
  }

  /** Makes `version` the active one of its kind (or of its door) and records when. */
  activate (version: string): ModelVersionInfo {
    this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    this.#catalogue.activate(version, file.kind)
    return this.info(version) as ModelVersionInfo
  }

  /** Reads a version's files back, checking the weights against their SHA-256. */
  async load (version: string): Promise<LoadedVersion> {
    this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    const artifacts = await this.#files.load(file)
    return { info: this.info(version) as ModelVersionInfo, artifacts, meta: file.meta }
  }

  /** A usable version's row, or undefined. */
  info (version: string): ModelVersionInfo | undefined {
    this.#sync()
    if (!this.#metas.has(version)) return undefined
    return this.#catalogue.info(version)
  }

  /** A usable global version's meta (standardisation, labels, options, evaluation); undefined for a door's model. */
  meta (version: string): ModelMeta | undefined {
    this.#sync()
    const meta = this.#metas.get(version)?.meta
    return meta && !isDoorMeta(meta) ? meta : undefined
  }

  /** A usable door version's meta (window, standardisation, novelty summary, evaluation); undefined for a global one. */
  doorMeta (version: string): DoorModelMeta | undefined {
    this.#sync()
    const meta = this.#metas.get(version)?.meta
    return meta && isDoorMeta(meta) ? meta : undefined
  }

  /** Usable versions, newest first. */
  list (kind?: ModelKind): ModelVersionInfo[] {
    this.#sync()
    return this.#catalogue.list(kind).filter((info) => this.#metas.has(info.version))
  }

  /** The active version of a kind (only usable ones unless `usableOnly` is false). */
  activeVersion (kind: ModelKind, usableOnly = true): string | undefined {
    this.#sync()
    const version = this.#catalogue.activeVersion(kind)
    if (version === undefined || (usableOnly && !this.#metas.has(version))) return undefined
    return version
  }

  /** The folder of a usable version, or undefined (unknown names never reach the file system). */
  versionDir (version: string): string | undefined {
    this.#sync()
    return this.#metas.has(version) ? this.#files.dir(version) : undefined
  }

  /** Records a training that starts now. @returns its id */
  beginTraining (version: string, kind: ModelKind): number {
    return this.#trainings.beginTraining(version, kind)
  }

  /** Records how a training ended. */
  endTraining (id: number, status: 'finished' | 'failed' | 'interrupted', seconds: number, message?: string): void {
    this.#trainings.endTraining(id, status, seconds, message)
  }

  /** The failure of the latest training, if the latest one failed or was interrupted. */
  lastFailure (): TrainingFailure | undefined {
    return this.#trainings.lastFailure()
  }

  /** Seconds the latest finished training took. */
  lastTrainingSeconds (): number | undefined {
    return this.#trainings.lastTrainingSeconds()
  }

  /**
   * Catches up with versions another connection recorded (or removed) since
   * the last look. Its folder was renamed into place before its row was
   * committed, so a recorded version is complete; it is verified like at
   * start all the same.
   */
  #sync (): void {
    if (!this.#recovered || !this.#catalogue.changedElsewhere()) return
    const recorded = new Set<string>()
    for (const { version, weightsSha256 } of this.#catalogue.recorded()) {
      recorded.add(version)
      if (this.#metas.has(version) || this.#unusable.get(version) === weightsSha256) continue
      const verified = this.#files.verify(version, weightsSha256)
      if (typeof verified === 'string') this.#unusable.set(version, weightsSha256)
      else this.#metas.set(version, verified)
    }
    for (const version of this.#metas.keys()) if (!recorded.has(version)) this.#metas.delete(version)
  }

  /** Taken on disk (even by debris) or in the database: either would clash. */
  #taken (version: string): boolean {
    return this.#files.exists(version) || this.#catalogue.has(version)
  }
}
