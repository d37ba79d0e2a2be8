/**
 * Model versions on disk and in a database. A version is a folder
 * `DATA_DIR/models/<version>/` holding `model.json` (tfjs layers format),
 * `weights.bin` and `meta.json` (standardisation statistics, labels, options,
 * evaluation, the weights' SHA-256). It is written into a temp folder, synced,
 * and renamed into place, so a crash at any moment leaves the old set of
 * versions or the new one, never a half-written version; start-up removes the
 * temp leftovers. Which version is active, and every training run, is
 * recorded in the database: SQLite in DATA_DIR, or with `DATABASE_URL`
 * PostgreSQL, shared by the instances of a cluster (each keeping the folders
 * of the versions it has in its own DATA_DIR; see {@link ModelStore.open}).
 *
 * This is the facade over four parts, one concern each: the folder format
 * (version-files.ts), the catalogue of versions and the active one
 * (version-catalogue.ts), the training log (training-log.ts) and start-up
 * recovery over them (version-recovery.ts). It migrates the model area's
 * tables (`MODEL_SCHEMA`, model-schema.ts) and knows which versions verified.
 *
 * The database is the truth, whoever wrote it: every read first asks the
 * catalogue whether versions were recorded elsewhere since (SQLite: `PRAGMA
 * data_version`, a microsecond; PostgreSQL: a change counter), and if so,
 * verifies the versions recorded before they are listed, loaded or
 * activated. A second process on the same DATA_DIR (the CLI, a test handle)
 * can therefore never leave this one with a list that misses its versions or
 * flags the wrong one active. Reads are asynchronous for that reason (the
 * catalogue may be a PostgreSQL server away).
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type * as tfjs from '@tensorflow/tfjs'
import type { Postgres } from '../../core/postgres.js'
import type { Storage } from '../../core/storage.js'
import type { ModelKind, ModelVersionInfo, TrainingFailure } from '../../schemas/model.js'
import type { DoorModelMeta } from '../door/model-types.js'
import { isDoorMeta, type ModelMeta, type StorableModel, type StoredMeta } from '../model-types.js'
import { MODEL_PG_SCHEMA, MODEL_SCHEMA } from './model-schema.js'
import { PostgresTrainingLog, SqliteTrainingLog, type TrainingEnd, type TrainingLog } from './training-log.js'
import { PostgresVersionCatalogue, SqliteVersionCatalogue, type VersionCatalogue } from './version-catalogue.js'
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

/** Where {@link ModelStore.open} keeps the rows. */
export interface ModelStoreOptions {
  /** The service's SQLite database: the rows without `postgres`; with it, the embedded catalogue a new cluster's is seeded from. */
  storage: Storage
  dataDir: string
  /** PostgreSQL (`DATABASE_URL`): the catalogue and the training log are there, shared by the cluster's instances; null or absent: SQLite. */
  postgres?: Postgres | null
  /**
   * This instance, as the shared training log names the runs it begins (see
   * PostgresTrainingLog): the same across its restarts, different from every
   * other instance's. Default: `<host name>:<DATA_DIR>`. PostgreSQL only.
   */
  instance?: string
}

/** The catalogue and the training log a store keeps its rows in. */
export interface ModelTables {
  catalogue: VersionCatalogue
  trainings: TrainingLog
}

/** The versions, their files and their rows. */
export class ModelStore {
  readonly modelsDir: string
  readonly #storage: Storage
  readonly #files: VersionFiles
  readonly #catalogue: VersionCatalogue
  readonly #trainings: TrainingLog
  /** Versions whose folder verified (at start, when written, or when another connection recorded them); the only ones ever loaded or listed. */
  readonly #metas = new Map<string, VersionMetaFile>()
  /** Rows another connection recorded whose folder did not verify, by their weights hash: not verified again until the row changes. */
  readonly #unusable = new Map<string, string>()
  #recovered = false
  /** The catch-up with the catalogue under way: one at a time, a read during one waits for it. */
  #syncing: Promise<void> | undefined

  /**
   * A store on `dataDir`'s folders, its rows in `storage` (SQLite, migrated
   * here) unless `tables` says where else ({@link ModelStore.open} builds them).
   */
  constructor (storage: Storage, dataDir: string, tables?: ModelTables) {
    // migrated on PostgreSQL too: the embedded catalogue is read when a new cluster's is seeded, and kept for going back
    storage.migrate(MODEL_SCHEMA)
    this.#storage = storage
    this.modelsDir = join(dataDir, MODELS_DIR)
    this.#files = new VersionFiles(this.modelsDir)
    this.#catalogue = tables?.catalogue ?? new SqliteVersionCatalogue(storage.db)
    this.#trainings = tables?.trainings ?? new SqliteTrainingLog(storage.db)
  }

  /**
   * Opens the store on either engine: SQLite in DATA_DIR, as the constructor
   * does, or with `postgres` the model area's PostgreSQL tables (migrated
   * first), shared by every instance of the cluster.
   */
  static async open (options: ModelStoreOptions): Promise<ModelStore> {
    const { storage, dataDir, postgres } = options
    if (!postgres) return new ModelStore(storage, dataDir)
    return new ModelStore(storage, dataDir, await ModelStore.openPostgresTables(postgres, options.instance ?? `${hostname()}:${dataDir}`))
  }

  /** The model area's PostgreSQL tables, migrated once here as SQLite's are in the constructor: the catalogue, and the training log as `instance`. */
  static async openPostgresTables (postgres: Postgres, instance: string): Promise<ModelTables> {
    if (instance === '') throw new Error('a training log on PostgreSQL needs the name of its instance')
    await postgres.migrate(MODEL_PG_SCHEMA)
    return { catalogue: new PostgresVersionCatalogue(postgres), trainings: new PostgresTrainingLog(postgres, instance) }
  }

  /** Whether the rows are a cluster's, shared with other instances (PostgreSQL). */
  get shared (): boolean {
    return this.#catalogue.shared
  }

  /**
   * Start-up: removes temp folders, verifies every version, adopts complete
   * folders that a crash left without a row, falls back from a broken active
   * version to the last good one, and marks trainings left "running" as
   * interrupted (see recoverVersions for what differs on a shared catalogue).
   * A shared catalogue that holds no version yet (a new cluster) is seeded
   * with this DATA_DIR's embedded active versions, as far as they are usable:
   * the first instance brings its models along. Call once, before anything else.
   */
  async recover (): Promise<RecoveryReport> {
    const fresh = this.#catalogue.shared && (await this.#catalogue.recorded()).length === 0
    const report = await recoverVersions({ files: this.#files, catalogue: this.#catalogue, trainings: this.#trainings }, this.#metas)
    if (fresh) report.seeded = await this.#seed(new SqliteVersionCatalogue(this.#storage.db))
    // what recovery read is current: only commits from elsewhere after this point need a look
    await this.#catalogue.changedElsewhere()
    this.#recovered = true
    return report
  }

  /** Activates here what `embedded` has active, of the versions that verified. @returns the versions activated */
  async #seed (embedded: VersionCatalogue): Promise<string[]> {
    const active = [
      ...await Promise.all((['csi', 'rssi'] as const).map(async (kind) => [kind, await embedded.activeVersion(kind)] as const)),
      ...[...await embedded.activeDoorVersions()].map(([, version]) => ['csi', version] as const)
    ]
    const seeded: string[] = []
    for (const [kind, version] of active) {
      if (version === undefined || !this.#metas.has(version)) continue
      await this.#catalogue.activate(version, kind)
      seeded.push(version)
    }
    return seeded
  }

  /**
   * A fresh version name: kind (or `door<id>` for a door's model) and UTC
   * time to the millisecond, e.g. `csi-20251125-183700-123`, `door5-20251125-183700-123`.
   */
  async newVersionName (kind: ModelKind | `door${number}`, at = new Date()): Promise<string> {
    const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').replace('Z', '')
    const base = `${kind}-${stamp}`
    let version = base
    for (let n = 2; await this.#taken(version); n++) version = `${base}-${n}`
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
    return this.#stage(version, model, createdAt, device, false)
  }

  /** @param recordedElsewhere the version is another instance's: on a shared catalogue its row may be there already */
  async #stage (version: string, model: StorableModel, createdAt: Date, device: number | undefined, recordedElsewhere: boolean): Promise<StagedVersion> {
    // the name is checked before it is looked up, so a bad one never reaches the file system
    checkVersionName(version)
    const taken = recordedElsewhere && this.#catalogue.shared ? this.#files.exists(version) : await this.#taken(version)
    if (taken) throw new Error(`version ${version} exists already`)
    return this.#files.stage(version, model, createdAt, device)
  }

  /**
   * Second half of {@link write}: rename into place, sync the parent, record
   * the row. On a shared catalogue a row another instance recorded under the
   * name is kept, if it holds the same weights.
   */
  async commit (staged: StagedVersion): Promise<ModelVersionInfo> {
    const { file } = staged
    await this.#files.commit(staged)
    if (this.#catalogue.shared) {
      const held = await this.#catalogue.insertIfAbsent(file)
      if (held !== file.weightsSha256) {
        throw new Error(`model version ${file.version}: its weights SHA-256 ${file.weightsSha256} differ from the ${held} the database records`)
      }
    } else {
      await this.#catalogue.insert(file)
    }
    this.#metas.set(file.version, file)
    return await this.info(file.version) as ModelVersionInfo
  }

  /** A usable version's files as bytes, for another instance (see {@link importVersion}). */
  async exportVersion (version: string): Promise<VersionBundle> {
    await this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    return this.#files.read(file)
  }

  /**
   * Writes a version another instance made, from its files ({@link exportVersion}
   * there), through the same crash-safe write as a trained one: not active;
   * the weights are checked against the hash its meta.json carries. On a
   * shared catalogue the row is usually there already (the instance that
   * made the version recorded it): only the folder is written then.
   * @throws when the bundle is not whole, or the name is taken (here, or on a shared catalogue by other weights)
   */
  async importVersion (version: string, bundle: VersionBundle): Promise<ModelVersionInfo> {
    const { file, model } = fromBundle(version, bundle)
    const info = await this.commit(await this.#stage(version, model, new Date(file.createdAt), file.device, true))
    if (info.weightsSha256 !== file.weightsSha256) {
      throw new Error(`model version ${version}: written weights SHA-256 ${info.weightsSha256} differ from ${file.weightsSha256}`)
    }
    return info
  }

  /** Each door's active version (usable ones only). */
  async activeDoorVersions (): Promise<Map<number, string>> {
    await this.#sync()
    const active = await this.#catalogue.activeDoorVersions()
    for (const [device, version] of active) if (!this.#metas.has(version)) active.delete(device)
    return active
  }

  /** The door goes back to the global model; its versions stay listed (and can be activated again). */
  async deactivateDoor (device: number): Promise<void> {
    await this.#catalogue.deactivateDoor(device)
  }

  /** Makes `version` the active one of its kind (or of its door) and records when. */
  async activate (version: string): Promise<ModelVersionInfo> {
    await this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    await this.#catalogue.activate(version, file.kind)
    return await this.info(version) as ModelVersionInfo
  }

  /** Reads a version's files back, checking the weights against their SHA-256. */
  async load (version: string): Promise<LoadedVersion> {
    await this.#sync()
    const file = this.#metas.get(version)
    if (!file) throw new Error(`no usable model version ${version}`)
    const artifacts = await this.#files.load(file)
    return { info: await this.info(version) as ModelVersionInfo, artifacts, meta: file.meta }
  }

  /** A usable version's row, or undefined. */
  async info (version: string): Promise<ModelVersionInfo | undefined> {
    await this.#sync()
    if (!this.#metas.has(version)) return undefined
    return this.#catalogue.info(version)
  }

  /** A usable global version's meta (standardisation, labels, options, evaluation); undefined for a door's model. */
  async meta (version: string): Promise<ModelMeta | undefined> {
    await this.#sync()
    const meta = this.#metas.get(version)?.meta
    return meta && !isDoorMeta(meta) ? meta : undefined
  }

  /** A usable door version's meta (window, standardisation, novelty summary, evaluation); undefined for a global one. */
  async doorMeta (version: string): Promise<DoorModelMeta | undefined> {
    await this.#sync()
    const meta = this.#metas.get(version)?.meta
    return meta && isDoorMeta(meta) ? meta : undefined
  }

  /** Usable versions, newest first. */
  async list (kind?: ModelKind): Promise<ModelVersionInfo[]> {
    await this.#sync()
    return (await this.#catalogue.list(kind)).filter((info) => this.#metas.has(info.version))
  }

  /** The active version of a kind (only usable ones unless `usableOnly` is false). */
  async activeVersion (kind: ModelKind, usableOnly = true): Promise<string | undefined> {
    await this.#sync()
    const version = await this.#catalogue.activeVersion(kind)
    if (version === undefined || (usableOnly && !this.#metas.has(version))) return undefined
    return version
  }

  /** The folder of a usable version, or undefined (unknown names never reach the file system). */
  async versionDir (version: string): Promise<string | undefined> {
    await this.#sync()
    return this.#metas.has(version) ? this.#files.dir(version) : undefined
  }

  /** Records a training that starts now. @returns its id */
  beginTraining (version: string, kind: ModelKind): Promise<number> {
    return this.#trainings.beginTraining(version, kind)
  }

  /** Records how a training ended. */
  endTraining (id: number, status: TrainingEnd, seconds: number, message?: string): Promise<void> {
    return this.#trainings.endTraining(id, status, seconds, message)
  }

  /** The failure of the latest training, if the latest one failed or was interrupted. */
  lastFailure (): Promise<TrainingFailure | undefined> {
    return this.#trainings.lastFailure()
  }

  /** Seconds the latest finished training took. */
  lastTrainingSeconds (): Promise<number | undefined> {
    return this.#trainings.lastTrainingSeconds()
  }

  /** Catches up with the catalogue ({@link catchUp}), one catch-up at a time. */
  async #sync (): Promise<void> {
    if (!this.#recovered) return
    // a read that came during another's catch-up waits for it, then asks again itself
    while (this.#syncing) await this.#syncing.catch(() => {})
    this.#syncing = this.#catchUp().finally(() => { this.#syncing = undefined })
    await this.#syncing
  }

  /**
   * Catches up with versions recorded (or removed) elsewhere since the last
   * look: another connection on this DATA_DIR, or on a shared catalogue
   * another instance (whose versions are unusable here until their folders
   * are imported). A folder was renamed into place before its row was
   * committed, so a recorded version here is complete; it is verified like at
   * start all the same.
   */
  async #catchUp (): Promise<void> {
    if (!await this.#catalogue.changedElsewhere()) return
    // a version written here while the rows are read is usable whatever they say (its row came after them)
    const known = new Set(this.#metas.keys())
    const recorded = new Set<string>()
    for (const { version, weightsSha256 } of await this.#catalogue.recorded()) {
      recorded.add(version)
      if (this.#metas.has(version) || this.#unusable.get(version) === weightsSha256) continue
      const verified = this.#files.verify(version, weightsSha256)
      if (typeof verified === 'string') this.#unusable.set(version, weightsSha256)
      else this.#metas.set(version, verified)
    }
    for (const version of known) if (!recorded.has(version)) this.#metas.delete(version)
  }

  /** Taken on disk (even by debris) or in the database: either would clash. */
  async #taken (version: string): Promise<boolean> {
    return this.#files.exists(version) || await this.#catalogue.has(version)
  }
}
