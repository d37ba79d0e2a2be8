/**
 * One training per scope cluster-wide: a lease in KV bucket `<c>_locks`, key
 * `train.global` or `train.door.<device>`, taken with `create` (refused when
 * the key holds one), renewed by its holder with `update` at the revision it
 * last wrote, and deleted at that revision when the run ends. The bucket's
 * ttl removes the lease of an instance that died mid-training. The value says
 * who trains which version and how far it got, so every instance can show it.
 */
import { JetStreamApiCodes } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import { CalibrationBusyError, TrainingBusyError } from '../../core/errors.js'
import type { TrainingLease, TrainingScope } from '../../ml/training-lock.js'
import type { TrainingProgress } from '../../schemas/model.js'
import { isApiError, openTtlBucket, type ClusterConnection } from './connection.js'

/** A lease's value: who trains, what, and how far it got. */
export interface TrainingLockValue {
  /** `global` or `door.<device>`. */
  scope: string
  /** The holding instance's ID. */
  holder: string
  /** When the holder took it, epoch ms. */
  since: number
  version?: string
  progress?: Omit<TrainingProgress, 'state'>
}

export interface TrainingLocksOptions {
  instanceId: string
  /** How long a lease outlives its holder's last renewal. Default 10 000. */
  ttlMs?: number
  /** How often the holder renews (and publishes its progress). Default 1000. */
  renewMs?: number
  /** A renewal or a release that failed (the lease lapses by itself). */
  onError?: (err: unknown) => void
}

/** Seconds a refused calibration is told to wait (as a local one is). */
const RETRY_AFTER_S = 10

/** The KV key of a scope. */
export function lockKey (scope: TrainingScope): string {
  return scope.kind === 'global' ? 'train.global' : `train.door.${scope.device}`
}

/** See the module's doc. */
export class TrainingLocks {
  readonly #kv: KV
  readonly #options: Required<TrainingLocksOptions>
  readonly #held = new Set<Held>()

  private constructor (kv: KV, options: TrainingLocksOptions) {
    this.#kv = kv
    this.#options = { ttlMs: 10_000, renewMs: 1000, onError: () => {}, ...options }
  }

  /** Opens the bucket (created, or brought to this ttl). */
  static async open (conn: ClusterConnection, options: TrainingLocksOptions): Promise<TrainingLocks> {
    const kv = await openTtlBucket(conn, conn.names.locksBucket, options.ttlMs ?? 10_000)
    return new TrainingLocks(kv, options)
  }

  /**
   * Takes `scope` for one run (a {@link TrainingLock} for ModelService.setTrainingLock).
   * @throws TrainingBusyError (global) or CalibrationBusyError (a door, with retryAfterSeconds), naming the holder
   */
  readonly lock = async (scope: TrainingScope): Promise<TrainingLease> => {
    const key = lockKey(scope)
    const value: TrainingLockValue = { scope: key.slice('train.'.length), holder: this.#options.instanceId, since: Date.now() }
    let revision: number
    try {
      revision = await this.#kv.create(key, JSON.stringify(value))
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamWrongLastSequence)) throw error
      throw refusal(scope, await this.#read(key))
    }
    const held = new Held(this.#kv, key, value, revision, this.#options)
    this.#held.add(held)
    held.released.then(() => this.#held.delete(held)).catch(() => {})
    return held
  }

  /** Every lease held in the cluster now (by scope). */
  async list (): Promise<TrainingLockValue[]> {
    const keys: string[] = []
    // no filter: a filtered listing may need a consumer feature NATS 2.9 lacks
    for await (const key of await this.#kv.keys()) if (key.startsWith('train.')) keys.push(key)
    const values = await Promise.all(keys.sort().map((key) => this.#read(key)))
    return values.filter((value): value is TrainingLockValue => value !== undefined)
  }

  /** Gives back every lease this instance holds (a graceful stop). */
  async stop (): Promise<void> {
    await Promise.all([...this.#held].map((held) => held.release()))
  }

  async #read (key: string): Promise<TrainingLockValue | undefined> {
    try {
      const entry = await this.#kv.get(key)
      return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<TrainingLockValue>()
    } catch {
      return undefined
    }
  }
}

/** The 409 a refused start answers, naming the instance that trains. */
function refusal (scope: TrainingScope, holder: TrainingLockValue | undefined): Error {
  const who = holder ? `instance ${holder.holder}` : 'another instance'
  const what = holder?.version ? ` (version ${holder.version}${holder.progress ? `, epoch ${holder.progress.epoch}/${holder.progress.epochs}` : ''})` : ''
  if (scope.kind === 'global') return new TrainingBusyError(`a training of the global model runs on ${who}${what}; one runs at a time in the cluster`)
  const err = new CalibrationBusyError(`door ${scope.device}'s calibration is training on ${who}${what}; one runs at a time in the cluster`)
  return Object.assign(err, { retryAfterSeconds: RETRY_AFTER_S })
}

/** A lease this instance holds: renewed with the latest status until released. */
class Held implements TrainingLease {
  readonly released: Promise<void>
  readonly #kv: KV
  readonly #key: string
  readonly #value: TrainingLockValue
  readonly #onError: (err: unknown) => void
  #revision: number
  #writes: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #lost = false
  #release: (() => void) | undefined
  #releasing: Promise<void> | undefined

  constructor (kv: KV, key: string, value: TrainingLockValue, revision: number, options: Required<TrainingLocksOptions>) {
    this.#kv = kv
    this.#key = key
    this.#value = value
    this.#revision = revision
    this.#onError = options.onError
    this.released = new Promise((resolve) => { this.#release = resolve })
    this.#timer = setInterval(() => { this.#write() }, options.renewMs)
  }

  update (status: { version?: string, progress?: Omit<TrainingProgress, 'state'> }): void {
    if (status.version !== undefined && status.version !== this.#value.version) {
      this.#value.version = status.version
      // the version is news at once; progress rides on the next renewal
      this.#write()
    }
    if (status.progress !== undefined) this.#value.progress = { ...status.progress }
  }

  release (): Promise<void> {
    this.#releasing ??= (async () => {
      clearInterval(this.#timer)
      this.#timer = undefined
      await this.#writes
      if (!this.#lost) {
        try {
          // at our revision: a lease that lapsed and was taken by another instance is theirs
          await this.#kv.delete(this.#key, { previousSeq: this.#revision })
        } catch (error) {
          this.#onError(error)
        }
      }
      this.#release?.()
    })()
    return this.#releasing
  }

  /** Renews with the latest status, after the write before it. */
  #write (): void {
    if (this.#timer === undefined || this.#lost) return
    this.#writes = this.#writes.then(async () => {
      if (this.#lost || this.#timer === undefined) return
      try {
        this.#revision = await this.#kv.update(this.#key, JSON.stringify(this.#value), this.#revision)
      } catch (error) {
        if (isApiError(error, JetStreamApiCodes.StreamWrongLastSequence)) {
          // it lapsed (this process stalled for a ttl) and may be someone else's: the run goes on, unguarded
          this.#lost = true
          this.#onError(new Error(`training lock ${this.#key}: lost (not renewed within the ttl); another instance may train this scope too`))
        } else {
          this.#onError(error)
        }
      }
    })
  }
}
