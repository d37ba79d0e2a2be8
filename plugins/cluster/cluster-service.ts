/**
 * One instance's part in a cluster (docs/cluster.md): it publishes the frames
 * it accepts to the JetStream frame stream, owns the partitions its leases
 * give it (consuming their frames into the door states), writes its doors'
 * states to the KV board on change and shows every other door as the board
 * holds it. Ownership moves by leases (partition-leases.ts); a partition's new
 * owner rebuilds each window from the stream's recent frames before its doors
 * are shown from here, so a handover does not flap.
 */
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ClusterStatus } from '../../schemas/cluster.js'
import { partitionOf } from './names.js'
import type { ClusterConnection } from './connection.js'
import type { FrameStream } from './frame-stream.js'
import type { DoorBoard } from './door-board.js'
import type { InstanceDirectory } from './instances.js'
import { PartitionLeases } from './partition-leases.js'
import { PartitionConsumer } from './partition-consumer.js'

/** The doors area's live states (`app.doors.states`), reached through its decorator. */
type DoorStates = FastifyInstance['doors']['states']
type DoorSnapshot = NonNullable<ReturnType<DoorStates['get']>>

/** Seconds of frames before a takeover that a new owner reads again: a door window (25 frames) and its hysteresis many times over. */
const REBUILD_S = 10

/** How often the owner refreshes its framed doors' rate and last frame on the board. */
const REFRESH_MS = 1000

export interface ClusterServiceOptions {
  conn: ClusterConnection
  stream: FrameStream
  board: DoorBoard
  directory: InstanceDirectory
  /** The app's door states (`app.doors.states`). */
  states: DoorStates
  /** Takes a device's frames into its door state (`app.doors.observe`). */
  observe: (device: number, frames: readonly Float32Array[]) => void
  instanceId: string
  partitions: number
  takeoverMs: number
  log: FastifyBaseLogger
}

/** An instance ID: the host, the port and a random part (new at every start, so a restarted instance is a new owner). */
export function newInstanceId (port: number): string {
  return `${hostname()}-${port}-${randomBytes(3).toString('hex')}`
}

/**
 * How long a partition lease, and an instance's directory entry, outlives its
 * last renewal: half OWNER_TAKEOVER_S, so a contender (polling every 500 ms)
 * takes a dead instance's partitions and rebuilds their windows within it.
 * The directory forgets the dead instance as soon, so the survivors' fair
 * shares grow to cover its partitions.
 */
export function leaseTtlMs (takeoverMs: number): number {
  return Math.max(600, Math.round(takeoverMs * 0.5))
}

/**
 * How many partitions `self` should own among the live `instances`: an even
 * split, the remainder to the first instances by ID, so the shares add up to
 * every partition (a ceiling for all would leave a newcomer none to take).
 */
export function fairShare (partitions: number, instances: readonly string[], self: string): number {
  const ids = [...new Set([...instances, self])].sort()
  const base = Math.floor(partitions / ids.length)
  return base + (ids.indexOf(self) < partitions % ids.length ? 1 : 0)
}

/**
 * What a ClusterService tells of its doors: `owned` when doors go live here
 * (their partition taken and their windows rebuilt: `ownsLive` is true for
 * them from then on), `disowned` when their partition is handed over or lost
 * (this instance publishes nothing more for them).
 */
export interface ClusterServiceEvents {
  owned: [devices: number[]]
  disowned: [devices: number[]]
}

interface Owned {
  consumer: PartitionConsumer | undefined
  acquiredAt: number
  /** Still showing the board's report of its doors: their windows are being rebuilt. */
  rebuilding: boolean
}

export class ClusterService extends EventEmitter<ClusterServiceEvents> {
  readonly #options: ClusterServiceOptions
  readonly #owned = new Map<number, Owned>()
  #leases: PartitionLeases | undefined
  #ticker: NodeJS.Timeout | undefined
  #stopping = false
  /** Board writes in flight: awaited before a partition is handed over and at close. */
  #writes = new Set<Promise<void>>()
  /**
   * Owned doors last written with a frame rate above 0: refreshed until a write
   * shows 0. `states.recentlyFramed()` hands a door that fell silent out once,
   * to whichever caller asks first (the doors area asks too), so this keeps its own.
   */
  readonly #framing = new Set<number>()
  /** What this instance last wrote for each door, so a refresh writes only what moved. */
  readonly #written = new Map<number, string>()

  constructor (options: ClusterServiceOptions) {
    super()
    this.#options = options
  }

  get instanceId (): string {
    return this.#options.instanceId
  }

  /** Whether this instance owns the partition of `device` and shows what it computes for it. */
  ownsLive (device: number): boolean {
    const owned = this.#owned.get(partitionOf(device, this.#options.partitions))
    return owned !== undefined && !this.#options.states.isHeld(device)
  }

  /** Publishes a batch to the frame stream; resolves once JetStream has it (stored once per `msgId`). */
  async publish (device: number, features: Float32Array[], receivedAt: number, msgId?: string): Promise<{ duplicate: boolean }> {
    const { duplicate } = await this.#options.stream.publish({ device, receivedAt, features }, msgId)
    return { duplicate }
  }

  /** Watches the board, then takes part in the partition leases. */
  async start (): Promise<void> {
    const { board, states, directory, conn, partitions, takeoverMs, instanceId } = this.#options
    board.on('put', (device, value) => {
      if (this.#stopping) return
      // our own write coming back: this instance computes that door
      if (this.ownsLive(device)) return
      states.hold(value as DoorSnapshot)
    })
    states.on('change', (snapshot) => {
      if (this.ownsLive(snapshot.device)) this.#write(snapshot)
    })
    await board.watch()
    directory.start()
    this.#leases = await PartitionLeases.open(conn, {
      partitions,
      instanceId,
      ttlMs: leaseTtlMs(takeoverMs),
      fairShare: () => fairShare(partitions, directory.list().map((instance) => instance.id), instanceId),
      onAcquired: async (partition) => this.#acquire(partition),
      onReleasing: async (partition) => this.#release(partition),
      onLost: (partition) => {
        this.#lose(partition).catch((err: unknown) => this.#options.log.error({ err, partition }, 'cluster: could not stop a lost partition'))
      },
      onError: (err) => this.#options.log.warn({ err }, 'cluster: a partition lease could not be renewed or taken; trying again')
    })
    this.#leases.start()
    this.#ticker = setInterval(() => this.#tick(), REFRESH_MS)
    this.#ticker.unref()
  }

  /** Hands every owned partition over (so another instance takes it at once), then leaves the directory. */
  async stop (): Promise<void> {
    this.#stopping = true
    if (this.#ticker) clearInterval(this.#ticker)
    this.#ticker = undefined
    await this.#leases?.stop()
    await Promise.allSettled([...this.#writes])
    await this.#options.directory.stop()
    await this.#options.board.stop()
  }

  /** What GET /cluster shows. */
  async status (): Promise<ClusterStatus> {
    const { conn, directory, partitions, instanceId } = this.#options
    const instances = directory.list()
    const owners = this.#leases?.owners() ?? new Map<number, string>()
    const lagOf = new Map<string, Record<string, number>>(instances.map((instance) => [instance.id, instance.lag ?? {}]))
    const stream = await this.#options.stream.info().catch(() => null)
    return {
      mode: 'cluster',
      cluster: conn.names.cluster,
      instance: instanceId,
      partitions,
      instances: instances.map((instance) => ({
        id: instance.id,
        url: instance.url,
        startedAt: new Date(instance.startedAt).toISOString(),
        heartbeatAt: new Date(instance.heartbeatAt).toISOString(),
        owned: [...instance.owned].sort((a, b) => a - b),
        lag: Object.values(instance.lag ?? {}).reduce((sum, lag) => sum + lag, 0),
        self: instance.id === instanceId
      })),
      owners: Array.from({ length: partitions }, (_, partition) => {
        const owner = owners.get(partition) ?? null
        const lag = owner === null ? null : lagOf.get(owner)?.[String(partition)] ?? 0
        return { partition, owner, lag }
      }),
      stream
    }
  }

  /** Lag (batches not yet read) of each partition this instance owns. */
  lag (): Record<string, number> {
    const lag: Record<string, number> = {}
    for (const [partition, owned] of this.#owned) lag[String(partition)] = owned.consumer?.pending() ?? 0
    return lag
  }

  /** Partitions this instance owns now. */
  owned (): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b)
  }

  async #acquire (partition: number): Promise<void> {
    const { conn, stream, states, observe, takeoverMs, log } = this.#options
    const owned: Owned = { consumer: undefined, acquiredAt: Date.now(), rebuilding: true }
    this.#owned.set(partition, owned)
    // the board's report stays on show while the window is rebuilt from the stream
    for (const door of this.#doorsOf(partition)) if (!states.isHeld(door.device)) states.hold(door)
    owned.consumer = await PartitionConsumer.start(conn, stream, {
      partition,
      replayFromMs: Date.now() - takeoverMs - REBUILD_S * 1000,
      onBatch: (batch) => {
        observe(batch.device, batch.features)
        // a live batch comes after every replayed one of its partition: that door's window is rebuilt
        if (!batch.replayed && states.isHeld(batch.device)) {
          states.release(batch.device)
          this.emit('owned', [batch.device])
          // where the door stands now, from here: every instance sees the handover done at once
          const snapshot = states.get(batch.device)
          if (snapshot && this.ownsLive(batch.device)) this.#write(snapshot)
        }
      },
      onError: (err) => log.warn({ err, partition }, 'cluster: a frame batch in the stream did not decode; skipped')
    })
    this.#syncDirectory()
    log.info({ partition }, 'cluster: took over a partition')
  }

  /** A graceful handover: stop reading, write where each door stands, then show the board's view of them. */
  async #release (partition: number): Promise<void> {
    const owned = this.#owned.get(partition)
    if (!owned) return
    await owned.consumer?.stop()
    const doors = this.#doorsOf(partition)
    for (const door of doors) if (!this.#options.states.isHeld(door.device)) this.#write(door, true)
    await Promise.allSettled([...this.#writes])
    this.#owned.delete(partition)
    for (const door of doors) this.#options.states.hold(door)
    this.emit('disowned', doors.map((door) => door.device))
    this.#syncDirectory()
    this.#options.log.info({ partition }, 'cluster: handed a partition over')
  }

  /** Another instance holds the lease now (this one missed its renewals): stop at once, write nothing more. */
  async #lose (partition: number): Promise<void> {
    const owned = this.#owned.get(partition)
    if (!owned) return
    this.#owned.delete(partition)
    const doors = this.#doorsOf(partition)
    for (const door of doors) this.#options.states.hold(door)
    this.emit('disowned', doors.map((door) => door.device))
    this.#syncDirectory()
    this.#options.log.warn({ partition }, 'cluster: lost a partition to another instance')
    await owned.consumer?.stop().catch(() => {})
  }

  /** Releases the doors whose partition has been read up to now, and refreshes framed doors on the board. */
  #tick (): void {
    const { states } = this.#options
    for (const [partition, owned] of this.#owned) {
      // a tick after the takeover at the earliest: the replay's first batches are on their way by then
      if (!owned.rebuilding || !owned.consumer || owned.consumer.pending() > 0 || Date.now() - owned.acquiredAt < REFRESH_MS) continue
      owned.rebuilding = false
      // doors with no live frame since the takeover: shown as their old owner left them, until they send or go stale
      const released = this.#doorsOf(partition).filter((door) => states.isHeld(door.device)).map((door) => door.device)
      for (const device of released) states.release(device)
      if (released.length > 0) this.emit('owned', released)
    }
    for (const device of new Set([...states.recentlyFramed(), ...this.#framing])) {
      const snapshot = states.get(device)
      if (!snapshot || !this.ownsLive(device)) {
        this.#framing.delete(device)
        continue
      }
      this.#write(snapshot)
      if (snapshot.frameRate > 0) this.#framing.add(device)
      else this.#framing.delete(device)
    }
    this.#syncDirectory()
  }

  #doorsOf (partition: number): DoorSnapshot[] {
    return this.#options.states.list().filter((door) => partitionOf(door.device, this.#options.partitions) === partition)
  }

  #write (snapshot: DoorSnapshot, force = false): void {
    const text = JSON.stringify(snapshot)
    if (!force && this.#written.get(snapshot.device) === text) return
    this.#written.set(snapshot.device, text)
    const write = this.#options.board.put(snapshot.device, snapshot)
      .catch((err: unknown) => {
        this.#written.delete(snapshot.device)
        this.#options.log.warn({ err, device: snapshot.device }, 'cluster: could not write a door state to the board; the next change writes it again')
      })
      .finally(() => this.#writes.delete(write))
    this.#writes.add(write)
  }

  #syncDirectory (): void {
    this.#options.directory.setOwned(this.owned(), this.lag())
  }
}
