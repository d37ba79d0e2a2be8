/**
 * The models of a cluster: each version's files in Object Store bucket
 * `<c>_models` (objects `<version>/meta.json`, `model.json`, `weights.bin`),
 * the active version of each scope in KV bucket `<c>_active` (key `global`
 * for the CSI model, `global.rssi`, `door.<device>` for a door's own), and
 * one training per scope cluster-wide (training-locks.ts).
 *
 * A local activation (a training that finished, a roll back, a door's
 * calibration, a door's model forgotten) uploads the version's files (unless
 * there already) and then writes the scope's key. Every instance watches the
 * bucket and makes its own model area match it: a version it lacks is
 * downloaded and written through the store's own crash-safe write, then
 * activated locally. At start, an instance converges to what the bucket says
 * (and seeds the scopes the bucket has never held with its own).
 *
 * The loop guard: an activation this instance makes because the bucket said
 * so is not published again (`#applying` holds it while it runs), and a local
 * activation of the version the bucket already names publishes nothing.
 */
import { Objm, type ObjectStore } from '@nats-io/obj'
import type { KV } from '@nats-io/kv'
import type { ServiceLog } from '../../core/logger.js'
import type { ModelService } from '../../ml/model-handler.js'
import type { VersionBundle } from '../../ml/store/version-files.js'
import type { ModelVersionInfo } from '../../schemas/model.js'
import type { ClusterConnection } from './connection.js'
import { isDevice } from './names.js'
import { StreamReader } from './stream-reader.js'
import { TrainingLocks, type TrainingLockValue } from './training-locks.js'

export interface ModelSyncOptions {
  model: ModelService
  instanceId: string
  log: ServiceLog
  /** How often a scope that could not be brought in line is tried again. Default 1000. */
  retryMs?: number
  /** The training locks' ttl. Default 10 000. */
  lockTtlMs?: number
}

/** What GET /cluster shows of the models. */
export interface ModelSyncStatus {
  /** The cluster's active version per scope (`global`, `global.rssi`, `door.<device>`). */
  active: Record<string, string>
  /** The trainings running in the cluster, by scope. */
  trainings: TrainingLockValue[]
}

/** A version's three objects; meta.json goes last, so its presence means the others are whole. */
const FILES = ['model.json', 'weights.bin', 'meta.json'] as const
const KV_OPERATION = 'KV-Operation'

/** The scope of a global version: its kind (`global` for the CSI model, `global.rssi`). */
function globalScope (info: ModelVersionInfo): string {
  return info.kind === 'csi' ? 'global' : `global.${info.kind}`
}

/** The door of scope `door.<device>`, or undefined. */
function deviceOf (scope: string): number | undefined {
  const match = /^door\.(\d{1,5})$/.exec(scope)
  const device = match ? Number(match[1]) : NaN
  return isDevice(device) ? device : undefined
}

/** See the module's doc. */
export class ModelSync {
  readonly locks: TrainingLocks
  readonly #conn: ClusterConnection
  readonly #kv: KV
  readonly #os: ObjectStore
  readonly #options: Required<ModelSyncOptions>
  /** What the bucket says per scope: a version, or null for a scope deleted (a door back on the global model). */
  readonly #desired = new Map<string, string | null>()
  /** Scopes this instance is bringing in line with the bucket, and to what: their local events are not published. */
  readonly #applying = new Map<string, string | null>()
  /** Scopes whose local activation is being published: the bucket is behind for a moment, not to be followed. */
  readonly #publishing = new Map<string, number>()
  /** The last failure per scope, so a retry every second logs once. */
  readonly #failed = new Map<string, string>()
  #publishes: Promise<void> = Promise.resolve()
  #reconciling: Promise<void> | undefined
  #again = false
  /** The last pass could not read this instance's versions (logged once until one can). */
  #localFailed = false
  #reader: StreamReader | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #onActivated = (info: ModelVersionInfo): void => {
    if (info.scope !== 'door') this.#onLocal(globalScope(info), info.version)
  }

  readonly #onDoorChanged = ({ device, version }: { device: number, version: string | undefined }): void => {
    this.#onLocal(`door.${device}`, version ?? null)
  }

  private constructor (conn: ClusterConnection, kv: KV, os: ObjectStore, locks: TrainingLocks, options: ModelSyncOptions) {
    this.#conn = conn
    this.#kv = kv
    this.#os = os
    this.locks = locks
    this.#options = { retryMs: 1000, lockTtlMs: 10_000, ...options }
  }

  /** Opens (creating when missing) the models' Object Store bucket, the active versions' and the locks' buckets. */
  static async open (conn: ClusterConnection, options: ModelSyncOptions): Promise<ModelSync> {
    const { names } = conn
    const os = await new Objm(conn.js).create(names.modelsBucket)
    const kv = await conn.kvm.create(names.activeBucket, { history: 1 })
    const locks = await TrainingLocks.open(conn, {
      instanceId: options.instanceId,
      ttlMs: options.lockTtlMs,
      onError: (err) => options.log.warn({ err }, 'cluster: training lock')
    })
    return new ModelSync(conn, kv, os, locks, options)
  }

  /**
   * Reads the bucket, seeds the scopes it never held with this instance's
   * versions, converges to it (resolves once tried: a scope that failed is
   * retried every `retryMs`), then follows it and publishes local activations.
   */
  async start (): Promise<void> {
    const { model } = this.#options
    model.on('activated', this.#onActivated)
    model.doorModels.on('changed', this.#onDoorChanged)
    model.setTrainingLock(this.locks.lock)
    const { names } = this.#conn
    const prefix = `$KV.${names.activeBucket}.`
    this.#reader = await StreamReader.start(this.#conn, {
      stream: `KV_${names.activeBucket}`,
      filterSubject: `${prefix}>`,
      namePrefix: `${names.cluster}_active_watch`,
      start: 'last-per-subject',
      onError: (err) => this.#options.log.warn({ err }, 'cluster: watching the active model versions'),
      onMessage: (message) => {
        const scope = message.subject.slice(prefix.length)
        const operation = message.headers?.get(KV_OPERATION) ?? ''
        const version = operation === 'DEL' || operation === 'PURGE' ? null : new TextDecoder().decode(message.data)
        this.#desired.set(scope, version)
        this.#reconcile()
      }
    })
    await this.#reader.initialRead
    for (const [scope, version] of await this.#localScopes()) {
      if (!this.#desired.has(scope)) this.#publish(scope, version)
    }
    await this.#publishes
    await this.#reconcile()
    this.#timer = setInterval(() => { this.#reconcile().catch(() => {}) }, this.#options.retryMs).unref()
  }

  /** Stops following and publishing, gives back this instance's training leases. */
  async stop (): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    const { model } = this.#options
    model.off('activated', this.#onActivated)
    model.doorModels.off('changed', this.#onDoorChanged)
    model.setTrainingLock(null)
    await this.#reader?.stop()
    await this.#publishes
    await this.#reconciling
    await this.locks.stop()
  }

  /** The cluster's active versions and the trainings running. */
  async status (): Promise<ModelSyncStatus> {
    const active: Record<string, string> = {}
    for (const [scope, version] of [...this.#desired].sort(([a], [b]) => a.localeCompare(b))) if (version !== null) active[scope] = version
    return { active, trainings: await this.locks.list().catch(() => []) }
  }

  /** This instance's active version per scope. */
  async #localScopes (): Promise<Map<string, string>> {
    const { model } = this.#options
    const scopes = new Map<string, string>()
    for (const info of await model.versions()) {
      if (info.active && info.scope !== 'door') scopes.set(globalScope(info), info.version)
    }
    // the predictor that serves, rather than the row: the same unless a load failed
    const served = model.active?.version
    if (served !== undefined) scopes.set('global', served)
    for (const device of model.doorModels.devices()) {
      const version = model.doorModels.get(device)?.version
      if (version !== undefined) scopes.set(`door.${device}`, version)
    }
    return scopes
  }

  #onLocal (scope: string, version: string | null): void {
    if (this.#stopped) return
    // this instance following the bucket, or the bucket already saying so: nothing to tell
    if (this.#applying.has(scope) && this.#applying.get(scope) === version) return
    if (this.#desired.get(scope) === version) return
    this.#publish(scope, version)
  }

  /** Uploads the version's files (unless there) and writes the scope's key, after the publishes before it. */
  #publish (scope: string, version: string | null): void {
    this.#publishing.set(scope, (this.#publishing.get(scope) ?? 0) + 1)
    this.#publishes = this.#publishes.then(async () => {
      try {
        if (version === null) {
          await this.#kv.delete(scope)
        } else {
          await this.#upload(version)
          await this.#kv.put(scope, version)
        }
        // the watch says it too, a moment later; until then nothing must pull this scope back
        this.#desired.set(scope, version)
        this.#options.log.info({ scope, version }, 'cluster: published the active model version')
      } catch (err) {
        this.#options.log.error({ err, scope, version }, 'cluster: could not publish a model version; the other instances keep theirs')
      } finally {
        const left = (this.#publishing.get(scope) ?? 1) - 1
        if (left === 0) this.#publishing.delete(scope)
        else this.#publishing.set(scope, left)
      }
    })
  }

  async #upload (version: string): Promise<void> {
    if (await this.#os.info(`${version}/meta.json`) !== null) return
    const bundle = await this.#options.model.exportVersion(version)
    const bytes: Record<(typeof FILES)[number], Uint8Array> = { 'model.json': bundle.model, 'weights.bin': bundle.weights, 'meta.json': bundle.meta }
    for (const file of FILES) await this.#os.putBlob({ name: `${version}/${file}` }, bytes[file])
  }

  async #download (version: string): Promise<VersionBundle> {
    const read = async (file: (typeof FILES)[number]): Promise<Uint8Array> => {
      const data = await this.#os.getBlob(`${version}/${file}`)
      if (data === null) throw new Error(`version ${version} has no ${file} in ${this.#conn.names.modelsBucket}`)
      return data
    }
    const [meta, model, weights] = await Promise.all([read('meta.json'), read('model.json'), read('weights.bin')])
    return { meta, model, weights }
  }

  /** Brings every scope in line with the bucket; one pass at a time, another after it when asked meanwhile. */
  #reconcile (): Promise<void> {
    if (this.#reconciling) {
      this.#again = true
      return this.#reconciling
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false
        let local: Map<string, string>
        try {
          local = await this.#localScopes()
          this.#localFailed = false
        } catch (err) {
          // the catalogue out of reach for a moment (PostgreSQL restarting): the timer tries again, logged once
          if (!this.#localFailed) this.#options.log.warn({ err }, 'cluster: could not read this instance\'s model versions; retrying')
          this.#localFailed = true
          return
        }
        for (const [scope, version] of [...this.#desired]) {
          if (this.#stopped) return
          if (this.#publishing.has(scope) || (local.get(scope) ?? null) === version) continue
          try {
            await this.#follow(scope, version)
            this.#failed.delete(scope)
          } catch (err) {
            const what = `${version}: ${(err as Error).message}`
            if (this.#failed.get(scope) !== what) {
              this.#options.log.warn({ err, scope, version }, 'cluster: could not follow the cluster\'s model version; retrying')
            }
            this.#failed.set(scope, what)
          }
        }
      } while (this.#again && !this.#stopped)
    })().finally(() => { this.#reconciling = undefined })
    return this.#reconciling
  }

  /** Makes `version` (downloaded first when missing) the local one of `scope`; null: the door falls back to the global model. */
  async #follow (scope: string, version: string | null): Promise<void> {
    const { model, log } = this.#options
    const device = deviceOf(scope)
    this.#applying.set(scope, version)
    try {
      if (version === null) {
        // a global model is never deactivated: only a door goes back to the global one
        if (device !== undefined) await model.doorModels.deactivate(device)
        return
      }
      if (await model.versionDir(version) === undefined) {
        const started = Date.now()
        await model.importVersion(version, await this.#download(version))
        log.info({ scope, version, ms: Date.now() - started }, 'cluster: downloaded a model version')
      }
      // activated on another instance, gate or not: the cluster serves one version per scope
      const refused = (await model.versions()).find((info) => info.version === version)?.gate?.passed === false
      await model.activate(version, { force: refused })
      log.info({ scope, version }, 'cluster: following the cluster\'s active model version')
    } finally {
      this.#applying.delete(scope)
    }
  }
}
