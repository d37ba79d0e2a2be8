/**
 * Who consumes which partition: a lease per partition in the KV bucket
 * `<c>_owners` (key `p<n>`, value the owner's instance id), whose ttl ends
 * the lease of an instance that stopped renewing.
 *
 * - Taking a partition is `create` (refused when the key holds a lease), so
 *   one instance wins; keeping it is `update` at the revision last written
 *   (refused when anyone else wrote since): a refused renewal means the lease
 *   is someone else's, and the holder stops at once (`onLost`).
 * - A renewal that cannot reach NATS is retried; once the lease could expire
 *   before the next renewal, the holder gives it up (`onLost`) rather than
 *   risk two consumers of one partition.
 * - Every `contendMs` the instance reads every key (a ttl expiry leaves no
 *   delete marker, so a watcher would never see a dead owner's lease go) and
 *   moves towards its fair share: above it, it releases its highest-numbered
 *   partitions (`onReleasing` awaited, then the key deleted, so another
 *   instance takes them at its next contention rather than after the ttl);
 *   below it, it claims free partitions. A free partition it saw another
 *   instance hold at the previous read (released, or its owner died) is a
 *   takeover: claimed at once, up to the share. Of the never-held ones (a
 *   cold start) it claims at most half what it lacks per round, starting at a
 *   random partition, so instances starting together split them rather than
 *   the first grabbing everything.
 * - `onAcquired`, `onReleasing` and `onLost` of one partition run in that
 *   order, never overlapping: a partition is released only once its
 *   `onAcquired` completed.
 *
 * An instance restarted with the same id does not take its former leases
 * back: they are held until they expire (ids are not proof of being the same
 * process).
 */
import { JetStreamApiCodes } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import { isApiError, openTtlBucket, type ClusterConnection } from './connection.js'

export interface PartitionLeasesOptions {
  partitions: number
  instanceId: string
  /** A lease not renewed within this expires. */
  ttlMs: number
  /** Between two renewals of every lease held. Default ttlMs / 3. */
  renewMs?: number
  /** Between two contention rounds (read every lease, release or claim). Default min(500, ttlMs / 4). */
  contendMs?: number
  /** The most partitions this instance should hold (read every round). Default: all. */
  fairShare?: () => number
  /** The partition is this instance's: start consuming it. What it throws goes to onError, and the lease is given back. */
  onAcquired: (partition: number) => Promise<void> | void
  /** Called before a graceful release deletes the key: stop consuming first. */
  onReleasing: (partition: number) => Promise<void>
  /** The lease is someone else's (or could be by now): stop consuming at once. */
  onLost: (partition: number) => void
  /** A round or a renewal that failed (retried), a callback that threw. Default: ignored. */
  onError?: (err: unknown) => void
}

interface Lease {
  partition: number
  /** The revision of our last write of the key. */
  revision: number
  /** When our last acknowledged write of the key was sent (local clock): the lease lasts at least until renewedAt + ttl. */
  renewedAt: number
  state: 'acquiring' | 'owned' | 'releasing' | 'lost'
  /** onAcquired's completion (failures caught). */
  acquired: Promise<void>
  /** The writes of the key (renewals, the delete), one after the other. */
  writes: Promise<void>
  released?: Promise<void>
}

/** A lease as read in a round. */
interface Held {
  owner: string
  revision: number
}

function keyOf (partition: number): string {
  return `p${partition}`
}

/** See the module's doc. */
export class PartitionLeases {
  readonly #kv: KV
  readonly #options: PartitionLeasesOptions
  readonly #id: string
  readonly #renewMs: number
  readonly #contendMs: number
  readonly #onError: (err: unknown) => void
  readonly #leases = new Map<number, Lease>()
  /** The owners of the last round's read, kept up to date with our own leases. */
  #owners = new Map<number, string>()
  /** Partitions another instance held at the last round's read. */
  #heldByOthers = new Set<number>()
  #contendTimer: NodeJS.Timeout | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #contending: Promise<void> | undefined
  #renewing: Promise<void> | undefined
  #started = false
  #stopping = false
  #stopped: Promise<void> | undefined

  private constructor (kv: KV, options: PartitionLeasesOptions, renewMs: number, contendMs: number) {
    this.#kv = kv
    this.#options = options
    this.#id = options.instanceId
    this.#renewMs = renewMs
    this.#contendMs = contendMs
    this.#onError = options.onError ?? (() => {})
  }

  /**
   * Opens the bucket (created, or brought to this ttl); nothing is claimed before start().
   * @throws on a partition count below 1, a ttl under 100 ms, a renewal period not shorter than the ttl
   */
  static async open (conn: ClusterConnection, options: PartitionLeasesOptions): Promise<PartitionLeases> {
    const { partitions, ttlMs, instanceId } = options
    if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partition leases: partitions ${partitions} must be an integer ≥ 1`)
    if (instanceId === '') throw new Error('partition leases: the instance id is empty')
    const renewMs = options.renewMs ?? ttlMs / 3
    const contendMs = options.contendMs ?? Math.min(500, ttlMs / 4)
    if (!(renewMs > 0 && renewMs < ttlMs)) {
      throw new RangeError(`partition leases: renewal every ${renewMs} ms must be > 0 and shorter than the ttl ${ttlMs} ms`)
    }
    if (!(contendMs > 0)) throw new RangeError(`partition leases: contention every ${contendMs} ms must be > 0`)
    const kv = await openTtlBucket(conn, conn.names.ownersBucket, ttlMs)
    return new PartitionLeases(kv, options, renewMs, contendMs)
  }

  /** Starts renewing and contending; the first round comes after a random part of contendMs. */
  start (): void {
    if (this.#started || this.#stopping) return
    this.#started = true
    this.#scheduleRenew()
    this.#scheduleContend(Math.random() * this.#contendMs)
  }

  /** The partitions whose lease this instance holds (acquiring, owned or being released), ascending. */
  owned (): number[] {
    return [...this.#leases.keys()].sort((a, b) => a - b)
  }

  /** Every held partition's owner as last seen (a partition missing is free). */
  owners (): Map<number, string> {
    return new Map([...this.#owners].sort(([a], [b]) => a - b))
  }

  /**
   * Stops contending, then releases every lease held (onReleasing, then the
   * key deleted), so other instances take them over at once rather than after
   * the ttl; renewals go on until then. Safe to call twice.
   */
  stop (): Promise<void> {
    this.#stopped ??= this.#shutdown()
    return this.#stopped
  }

  async #shutdown (): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#contendTimer)
    await this.#contending
    await Promise.all([...this.#leases.values()].map((lease) => this.#release(lease)))
    clearTimeout(this.#renewTimer)
    await this.#renewing
  }

  #scheduleContend (delayMs: number): void {
    this.#contendTimer = setTimeout(() => {
      this.#contending = this.#contend().catch(this.#onError).finally(() => {
        this.#contending = undefined
        // ±20 %: instances that started together drift apart
        if (!this.#stopping) this.#scheduleContend(this.#contendMs * (0.8 + 0.4 * Math.random()))
      })
    }, delayMs)
  }

  #scheduleRenew (): void {
    this.#renewTimer = setTimeout(() => {
      this.#renewing = this.#renewAll().catch(this.#onError).finally(() => {
        this.#renewing = undefined
        // renewals go on while stop() releases, until it clears the timer
        if (this.#stopped === undefined || this.#leases.size > 0) this.#scheduleRenew()
      })
    }, this.#renewMs)
  }

  /** The most partitions to hold now. */
  #share (): number {
    const { fairShare, partitions } = this.#options
    if (fairShare === undefined) return partitions
    try {
      const share = Math.floor(fairShare())
      return Number.isFinite(share) ? Math.min(partitions, Math.max(0, share)) : partitions
    } catch (error) {
      this.#onError(error)
      return this.#leases.size
    }
  }

  /** One round: read every lease, then release the surplus or claim towards the share. */
  async #contend (): Promise<void> {
    const { partitions } = this.#options
    const read = await Promise.all(Array.from({ length: partitions }, async (_, partition): Promise<Held | undefined> => {
      const entry = await this.#kv.get(keyOf(partition))
      return entry === null || entry.operation !== 'PUT' ? undefined : { owner: entry.string(), revision: entry.revision }
    }))
    const heldBefore = this.#heldByOthers
    this.#heldByOthers = new Set(read.flatMap((held, partition) => (held !== undefined && !this.#leases.has(partition) ? [partition] : [])))
    this.#owners = new Map(read.flatMap((held, partition) => (held === undefined ? [] : [[partition, held.owner] as const])))
    this.#syncOwners()
    if (this.#stopping) return

    const share = this.#share()
    const held = this.#leases.size
    if (held > share) {
      // the highest partitions go, each once its onAcquired completed (one still acquiring goes at a later round)
      const surplus = [...this.#leases.values()].sort((a, b) => b.partition - a.partition).slice(0, held - share)
      await Promise.all(surplus.filter((lease) => lease.state === 'owned').map((lease) => this.#release(lease)))
      return
    }
    const lacking = share - held
    if (lacking === 0) return
    const offset = Math.floor(Math.random() * partitions)
    const free = Array.from({ length: partitions }, (_, index) => (index + offset) % partitions)
      .filter((partition) => read[partition] === undefined && !this.#leases.has(partition))
    const takeovers = free.filter((partition) => heldBefore.has(partition))
    const neverHeld = free.filter((partition) => !heldBefore.has(partition))
    let claims = Math.min(lacking, takeovers.length)
    let coldClaims = Math.min(lacking - claims, Math.ceil(lacking / 2))
    for (const partition of [...takeovers, ...neverHeld]) {
      if (this.#stopping) return
      const takeover = heldBefore.has(partition)
      if (takeover ? claims === 0 : coldClaims === 0) continue
      if (await this.#claim(partition)) {
        if (takeover) claims--
        else coldClaims--
      }
    }
  }

  /** Tries to take `partition`; true when this instance holds it now. */
  async #claim (partition: number): Promise<boolean> {
    let revision: number
    const sentAt = Date.now()
    try {
      revision = await this.#kv.create(keyOf(partition), this.#id)
    } catch (error) {
      // another instance was quicker
      if (!isApiError(error, JetStreamApiCodes.StreamWrongLastSequence)) this.#onError(error)
      return false
    }
    const lease: Lease = {
      partition,
      revision,
      renewedAt: sentAt,
      state: 'acquiring',
      acquired: Promise.resolve(),
      writes: Promise.resolve()
    }
    this.#leases.set(partition, lease)
    this.#owners.set(partition, this.#id)
    lease.acquired = (async () => {
      try {
        await this.#options.onAcquired(partition)
      } catch (error) {
        this.#onError(error)
        if (lease.state === 'acquiring') await this.#giveBack(lease)
        return
      }
      if (lease.state === 'acquiring') lease.state = 'owned'
    })()
    return true
  }

  /** Renews every lease held. */
  async #renewAll (): Promise<void> {
    const now = Date.now()
    await Promise.all([...this.#leases.values()].map((lease) => {
      if (now >= lease.renewedAt + this.#options.ttlMs) {
        // not renewed for a ttl (the event loop was blocked, a write hung): it may be someone else's by now
        this.#onError(new Error(`partition leases: the lease of partition ${lease.partition} went ${now - lease.renewedAt} ms without renewal`))
        this.#lose(lease)
        return undefined
      }
      lease.writes = lease.writes.then(() => this.#renew(lease))
      return lease.writes
    }))
  }

  async #renew (lease: Lease): Promise<void> {
    // released or lost while this waited for the write before it
    if (this.#leases.get(lease.partition) !== lease) return
    const sentAt = Date.now()
    try {
      // a write that hangs fails before the next renewal is due
      lease.revision = await this.#kv.update(keyOf(lease.partition), this.#id, lease.revision, Math.max(100, this.#renewMs))
      lease.renewedAt = sentAt
    } catch (error) {
      if (this.#leases.get(lease.partition) !== lease) return
      if (isApiError(error, JetStreamApiCodes.StreamWrongLastSequence)) {
        // someone wrote the key since our last write, or it expired
        this.#lose(lease)
        return
      }
      this.#onError(error)
      // NATS is away: give the partition up before the lease could expire and be taken
      if (Date.now() + this.#renewMs >= lease.renewedAt + this.#options.ttlMs) this.#lose(lease)
    }
  }

  /** The lease is (or may be) someone else's: onLost once onAcquired completed (unless a release stops the consumer already). */
  #lose (lease: Lease): void {
    const releasing = lease.state === 'releasing'
    lease.state = 'lost'
    this.#leases.delete(lease.partition)
    // whose it is now, the next round reads
    this.#owners.delete(lease.partition)
    if (releasing) return
    lease.acquired.then(() => this.#options.onLost(lease.partition)).catch(this.#onError)
  }

  /** A graceful release: onReleasing (after onAcquired), then the key deleted at our revision. */
  #release (lease: Lease): Promise<void> {
    lease.released ??= (async () => {
      await lease.acquired
      if (lease.state !== 'owned') return
      lease.state = 'releasing'
      try {
        await this.#options.onReleasing(lease.partition)
      } catch (error) {
        this.#onError(error)
      }
      if (lease.state !== 'releasing') return
      await this.#giveBack(lease)
    })()
    return lease.released
  }

  /** Forgets the lease, then deletes the key at our revision (refused if someone else's by now). */
  async #giveBack (lease: Lease): Promise<void> {
    // no longer ours from here: a second owner is never observed, even for the time the delete takes
    lease.state = 'lost'
    this.#leases.delete(lease.partition)
    this.#owners.delete(lease.partition)
    await lease.writes
    try {
      await this.#kv.delete(keyOf(lease.partition), { previousSeq: lease.revision })
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamWrongLastSequence)) this.#onError(error)
    }
  }

  /** Our own leases override the last read. */
  #syncOwners (): void {
    for (const partition of this.#leases.keys()) this.#owners.set(partition, this.#id)
  }
}
