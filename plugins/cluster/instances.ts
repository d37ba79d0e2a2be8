/**
 * The live instances of the cluster, in the KV bucket `<c>_instances`: each
 * instance writes its entry (key: its id) every heartbeat, and the bucket's
 * ttl removes the entry of one that stopped writing. A ttl expiry leaves no
 * delete marker, so a watcher would never see a dead instance go: the
 * directory reads the whole bucket on every heartbeat instead.
 */
import { EventEmitter } from 'node:events'
import type { KV } from '@nats-io/kv'
import { openTtlBucket, type ClusterConnection } from './connection.js'
import { INSTANCE_ID_PATTERN } from './names.js'

/** One instance as the directory lists it. */
export interface InstanceInfo {
  id: string
  /** Its HTTP base URL (where another instance or a proxy reaches it). */
  url: string
  /** Epoch ms (its own clock). */
  startedAt: number
  /** The partitions it holds (sorted). */
  owned: number[]
  /** When it wrote this entry, epoch ms (its own clock: compare with care). */
  heartbeatAt: number
  /** Frame batches not yet read, by owned partition (its consumers' lag at the heartbeat). */
  lag: Record<string, number>
}

export interface InstanceDirectoryOptions {
  self: Omit<InstanceInfo, 'heartbeatAt' | 'owned' | 'lag'>
  /** An entry not written again within this is gone: how long a dead instance stays listed, at most (plus a heartbeat). */
  ttlMs: number
  /** Between two writes of its own entry and reads of the bucket. Default ttlMs / 3. */
  heartbeatMs?: number
  /** A heartbeat that could not write or read (retried at the next one). Default: ignored. */
  onError?: (err: unknown) => void
}

const INSTANCE_ID = new RegExp(INSTANCE_ID_PATTERN)

/** Whether two views list the same instances with the same url, start and partitions (heartbeats aside). */
function sameView (a: InstanceInfo[], b: InstanceInfo[]): boolean {
  return a.length === b.length && a.every((info, index) => {
    const other = b[index]
    return info.id === other.id && info.url === other.url && info.startedAt === other.startedAt && info.owned.join() === other.owned.join()
  })
}

/** A value read from the bucket, if it is an instance entry. */
function parseInfo (key: string, value: unknown): InstanceInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { url, startedAt, owned, heartbeatAt, lag } = value as Record<string, unknown>
  if (typeof url !== 'string' || typeof startedAt !== 'number' || typeof heartbeatAt !== 'number') return undefined
  if (!Array.isArray(owned) || !owned.every((partition) => Number.isInteger(partition))) return undefined
  const entries = typeof lag === 'object' && lag !== null ? Object.entries(lag).filter(([, n]) => Number.isInteger(n)) : []
  const lags = Object.fromEntries(entries) as Record<string, number>
  return { id: key, url, startedAt, owned: owned as number[], heartbeatAt, lag: lags }
}

/** See the module's doc. `changed` is emitted when the list differs from the last one (heartbeat times aside). */
export class InstanceDirectory extends EventEmitter<{ changed: [] }> {
  readonly #kv: KV
  readonly #self: Omit<InstanceInfo, 'heartbeatAt' | 'owned' | 'lag'>
  readonly #heartbeatMs: number
  readonly #onError: (err: unknown) => void
  #owned: number[] = []
  #lag: Record<string, number> = {}
  #view: InstanceInfo[] = []
  #timer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  /** A beat was asked for while one ran: the next follows at once. */
  #again = false
  #started = false
  #stopped = false

  private constructor (kv: KV, options: InstanceDirectoryOptions) {
    super()
    this.#kv = kv
    this.#self = { ...options.self }
    this.#heartbeatMs = options.heartbeatMs ?? options.ttlMs / 3
    this.#onError = options.onError ?? (() => {})
  }

  /**
   * Opens the bucket (created, or brought to this ttl), writes this
   * instance's entry and reads the others', so list() is filled at once.
   * @throws when the id does not match INSTANCE_ID_PATTERN, or NATS fails
   */
  static async open (conn: ClusterConnection, options: InstanceDirectoryOptions): Promise<InstanceDirectory> {
    if (!INSTANCE_ID.test(options.self.id)) {
      throw new Error(`instance directory: the instance id ${JSON.stringify(options.self.id)} must match ${INSTANCE_ID_PATTERN}`)
    }
    const heartbeatMs = options.heartbeatMs ?? options.ttlMs / 3
    if (!(heartbeatMs > 0 && heartbeatMs < options.ttlMs)) {
      throw new RangeError(`instance directory: heartbeat ${heartbeatMs} ms must be > 0 and shorter than the ttl ${options.ttlMs} ms`)
    }
    const kv = await openTtlBucket(conn, conn.names.instancesBucket, options.ttlMs)
    const directory = new InstanceDirectory(kv, options)
    await directory.#beat()
    return directory
  }

  /** Starts the heartbeat loop. */
  start (): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    this.#schedule()
  }

  /** The partitions this instance holds, written with its next heartbeat (one is brought forward); `lag` rides along with the next one. */
  setOwned (partitions: number[], lag: Record<string, number> = {}): void {
    this.#lag = lag
    const owned = [...partitions].sort((a, b) => a - b)
    if (owned.join() === this.#owned.join()) return
    this.#owned = owned
    if (this.#started && !this.#stopped) this.#schedule(0)
  }

  /** The instances as read at the last heartbeat, sorted by id. */
  list (): InstanceInfo[] {
    return this.#view.map((info) => ({ ...info, owned: [...info.owned], lag: { ...info.lag } }))
  }

  /** Stops the heartbeats and deletes this instance's entry, so the others drop it at their next heartbeat. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#beating
    try {
      await this.#kv.delete(this.#self.id)
    } catch (error) {
      // the entry expires by the ttl all the same
      this.#onError(error)
    }
  }

  #schedule (delayMs = this.#heartbeatMs): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#tick(), delayMs)
  }

  #tick (): void {
    // a beat still running (NATS slow) is not doubled: the next one follows when it ends
    if (this.#beating !== undefined) {
      this.#again = true
      return
    }
    this.#beating = this.#beat().catch(this.#onError).finally(() => {
      this.#beating = undefined
      if (this.#stopped) return
      this.#schedule(this.#again ? 0 : this.#heartbeatMs)
      this.#again = false
    })
  }

  /** Writes this instance's entry, then reads every entry. */
  async #beat (): Promise<void> {
    const info: InstanceInfo = { ...this.#self, owned: this.#owned, heartbeatAt: Date.now(), lag: this.#lag }
    await this.#kv.put(this.#self.id, JSON.stringify(info))
    const keys: string[] = []
    for await (const key of await this.#kv.keys()) keys.push(key)
    const entries = await Promise.all(keys.map(async (key) => {
      const entry = await this.#kv.get(key)
      // expired or deleted since the listing
      if (entry === null || entry.operation !== 'PUT') return undefined
      try {
        return parseInfo(key, entry.json())
      } catch {
        return undefined
      }
    }))
    const view = entries.filter((entry) => entry !== undefined).sort((a, b) => a.id.localeCompare(b.id))
    if (this.#stopped) return
    const changed = !sameView(view, this.#view)
    this.#view = view
    if (changed) this.emit('changed')
  }
}
