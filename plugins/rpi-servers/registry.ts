import type { Database } from 'better-sqlite3'
import { EventEmitter } from 'node:events'
import type { KnownDevice, LiveDevice } from '../../schemas/rpi-servers.js'
import { SqliteDeviceRows, type DeviceRow, type DeviceRowStore, type DeviceSeen } from './device-rows.js'

/** One keep-alive: who called, from where. */
export interface KeepAlive {
  id: number
  name: string
  addr: string
}

export interface DeviceRegistryOptions {
  /** Milliseconds of silence after which a Pi is no longer live. */
  staleAfterMs: number
  /**
   * Longest a Pi's `last_seen` and keep-alive count wait in memory before
   * they are written, in one transaction with every other Pi's (default
   * 1000). 0 = every keep-alive written at once, frames' `last_seen` at most
   * every 10 s (the design before coalescing).
   */
  flushMs?: number
  /**
   * Hears of a flush that failed (e.g. a full disk); the rows stay dirty and
   * the next flush tries again. With an asynchronous store (PostgreSQL) it
   * hears of any write that failed after its call returned; the store tries
   * that write again.
   */
  onFlushError?: (err: unknown) => void
  /** Clock in epoch milliseconds; tests inject their own. */
  now?: () => number
}

/** A Pi as remembered: the row of `rpi_devices`, possibly ahead of it by up to `flushMs`. */
type DeviceRecord = DeviceRow

/** Without coalescing (flushMs 0): how often frames alone write a Pi's `last_seen`, as before. */
const FRAME_TOUCH_WRITE_MS = 10_000

/** The registry's events: a Pi came live (new, or back from silence), went stale, or was seen for the first time ever. */
export interface DeviceEvents {
  live: [LiveDevice]
  stale: [number]
  known: [number]
  /** The name a door shows changed: a user renamed it, or its Pi's keep-alive carried another NAME while it had none of its own. */
  renamed: [number]
  /** A Pi was forgotten (its door removed). */
  forgotten: [number]
}

/**
 * The Pis: which are live (heard from within `staleAfterMs` by this process)
 * and which were ever seen (kept in the database, so history survives a
 * restart; a restart starts with none live). A keep-alive or a batch of frames makes a
 * Pi live.
 *
 * Every Pi is held in memory and read from there. What a Pi says often — it
 * is still there (`lastSeen`, the keep-alive count) — is written at most every
 * `flushMs`, all dirty Pis in one transaction, and on close(): a keep-alive
 * costs no disk write on the request path, and a crash loses at most the last
 * `flushMs` of last-seen times and counts. What a Pi says rarely — that it
 * exists, its name, its address — is written before the request is answered,
 * so a device in an answer is never missing after a crash (with PostgreSQL:
 * queued before the request is answered, see {@link settled}).
 *
 * Its rows live in a {@link DeviceRowStore} (device-rows.ts): SQLite's
 * `rpi_devices` of `RPI_SERVERS_SCHEMA` (rpi-servers-schema.ts), migrated by
 * the area's plugin before it builds this, or PostgreSQL's of
 * `RPI_SERVERS_PG_SCHEMA`.
 */
export class DeviceRegistry extends EventEmitter<DeviceEvents> {
  readonly staleAfterMs: number
  readonly #rows: DeviceRowStore
  readonly #now: () => number
  readonly #flushMs: number
  readonly #onFlushError: (err: unknown) => void
  /** Every known Pi, by ID. */
  readonly #devices = new Map<number, DeviceRecord>()
  /** When this process last heard from each Pi it has not swept as stale. */
  readonly #heardAt = new Map<number, number>()
  /** Pis whose last_seen or keep-alive count is ahead of their row. */
  readonly #dirty = new Set<number>()
  /** Without coalescing: when frames alone last wrote a Pi's last_seen. */
  readonly #touchWritten = new Map<number, number>()
  #flushTimer: NodeJS.Timeout | undefined
  #closed = false

  /**
   * @param rows where the rows live; a SQLite connection stands for
   *   `new SqliteDeviceRows(db)` (an asynchronous store, PostgreSQL, is opened
   *   first: `await PostgresDeviceRows.open(pg)`)
   */
  constructor (rows: DeviceRowStore | Database, options: DeviceRegistryOptions) {
    super()
    this.#rows = isSqlite(rows) ? new SqliteDeviceRows(rows) : rows
    this.staleAfterMs = options.staleAfterMs
    this.#now = options.now ?? Date.now
    this.#flushMs = options.flushMs ?? 1000
    this.#onFlushError = options.onFlushError ?? (() => {})
    this.#rows.onWriteError((err) => { this.#onFlushError(err) })
    for (const row of this.#rows.load()) this.#devices.set(row.id, row)
  }

  /** Whether a Pi was ever heard from. */
  isKnown (id: number): boolean {
    return this.#devices.has(id)
  }

  /** Whether a Pi is live now. */
  isLive (id: number): boolean {
    const heardAt = this.#heardAt.get(id)
    return heardAt !== undefined && !this.#isStale(heardAt, this.#now())
  }

  /**
   * Records a keep-alive: the Pi is live from now on and remembered. A new
   * Pi, or a new name or address, is written before this returns.
   * @returns the device as listed, and whether it was not live before (new, or back from silence)
   */
  keepAlive (call: KeepAlive): { device: LiveDevice, cameLive: boolean } {
    const now = this.#now()
    const cameLive = !this.isLive(call.id)
    const before = this.#devices.get(call.id)
    const device: DeviceRecord = before
      ? { ...before, name: call.name, addr: call.addr, lastSeen: Math.max(before.lastSeen, now), keepAlives: before.keepAlives + 1 }
      : { id: call.id, name: call.name, displayName: null, addr: call.addr, firstSeen: now, lastSeen: now, keepAlives: 1 }
    if (!before || before.name !== call.name || before.addr !== call.addr || this.#flushMs === 0) {
      // written first: a refused row (a bad ID, a full disk) leaves memory as it was
      this.#write(device)
    } else {
      this.#markDirty(call.id)
    }
    this.#devices.set(call.id, device)
    this.#heardAt.set(call.id, now)
    if (!before) this.emit('known', call.id)
    else if (before.displayName === null && before.name !== call.name) this.emit('renamed', call.id)
    const listed = toLiveDevice(device, now)
    if (cameLive) this.emit('live', listed)
    return { device: listed, cameLive }
  }

  /**
   * Frames from a Pi imply its keep-alive: it is live from now on. A Pi seen
   * for the first time is written at once (without a name); after that only
   * its last_seen moves, written with the next flush.
   */
  touch (id: number, addr: string): void {
    const now = this.#now()
    const cameLive = !this.isLive(id)
    const before = this.#devices.get(id)
    if (!before) {
      // a Pi known only from its frames has no name yet and no keep-alive counted
      const device: DeviceRecord = { id, name: '', displayName: null, addr, firstSeen: now, lastSeen: now, keepAlives: 0 }
      this.#write(device)
      this.#devices.set(id, device)
      this.#touchWritten.set(id, now)
    } else {
      before.lastSeen = Math.max(before.lastSeen, now)
      if (this.#flushMs > 0) {
        this.#markDirty(id)
      } else if (now - (this.#touchWritten.get(id) ?? 0) >= FRAME_TOUCH_WRITE_MS) {
        this.#write(before)
        this.#touchWritten.set(id, now)
      }
    }
    this.#heardAt.set(id, now)
    if (!before) this.emit('known', id)
    if (cameLive) this.emit('live', toLiveDevice(this.#devices.get(id) as DeviceRecord, now))
  }

  /**
   * Forgets a Pi: its row and its live entry (a Pi that posts again comes back as new).
   * @returns whether it was known
   */
  forget (id: number): boolean {
    this.#rows.delete(id)
    const known = this.#devices.delete(id)
    this.#heardAt.delete(id)
    this.#dirty.delete(id)
    this.#touchWritten.delete(id)
    this.emit('forgotten', id)
    return known
  }

  /**
   * Takes in what other instances of a cluster wrote to the shared database:
   * Pis this one never heard from become known, and a door's name changed
   * elsewhere is shown here too (`known` / `renamed` events). What this
   * instance holds of its own Pis (times, counts, live) stays as it is.
   */
  adopt (rows: readonly DeviceRow[]): void {
    for (const row of rows) {
      const device = this.#devices.get(row.id)
      if (!device) {
        this.#devices.set(row.id, { ...row })
        this.emit('known', row.id)
        continue
      }
      const shownBefore = this.nameOf(row.id)
      device.displayName = row.displayName
      if (device.name === '' && row.name !== '') device.name = row.name
      if (this.nameOf(row.id) !== shownBefore) this.emit('renamed', row.id)
    }
  }

  /** The name a known Pi's door shows: the one a user gave it, else the Pi's NAME ('' when it never sent a keep-alive). */
  nameOf (id: number): string {
    const device = this.#devices.get(id)
    return device?.displayName ?? device?.name ?? ''
  }

  /**
   * Gives a known Pi's door a name of its own, which keep-alives leave alone;
   * null goes back to the Pi's NAME. Written before this returns.
   * @returns false when no such Pi is known
   */
  rename (id: number, displayName: string | null): boolean {
    const device = this.#devices.get(id)
    if (!device) return false
    const shownBefore = this.nameOf(id)
    this.#rows.setDisplayName(id, displayName)
    device.displayName = displayName
    if (this.nameOf(id) !== shownBefore) this.emit('renamed', id)
    return true
  }

  /** The live Pis by ID. Staleness is checked here too, so the list is exact between sweeps. */
  live (): LiveDevice[] {
    const now = this.#now()
    const live: LiveDevice[] = []
    for (const [id, heardAt] of this.#heardAt) {
      const device = this.#devices.get(id)
      if (device && !this.#isStale(heardAt, now)) live.push(toLiveDevice(device, heardAt))
    }
    return live.sort((a, b) => a.id - b.id)
  }

  /** How many Pis are live now. */
  liveCount (): number {
    const now = this.#now()
    let count = 0
    for (const heardAt of this.#heardAt.values()) if (!this.#isStale(heardAt, now)) count++
    return count
  }

  /** Every Pi ever seen, with whether it is live now (from memory: the rows may trail by up to `flushMs`). */
  /** Every known Pi's ID, unsorted (no record built: the doors list walks 10,000 of them). */
  knownIds (): IterableIterator<number> {
    return this.#devices.keys()
  }

  known (): KnownDevice[] {
    return [...this.#devices.values()].sort((a, b) => a.id - b.id).map((device) => ({
      addr: device.addr,
      name: device.name,
      id: device.id,
      firstSeen: new Date(device.firstSeen).toISOString(),
      lastSeen: new Date(device.lastSeen).toISOString(),
      keepAlives: device.keepAlives,
      live: this.isLive(device.id)
    }))
  }

  /**
   * Drops the Pis silent for `staleAfterMs` from the live set.
   * @returns the IDs dropped
   */
  sweep (): number[] {
    const now = this.#now()
    const dropped: number[] = []
    for (const [id, heardAt] of this.#heardAt) {
      if (this.#isStale(heardAt, now)) {
        this.#heardAt.delete(id)
        dropped.push(id)
        this.emit('stale', id)
      }
    }
    return dropped
  }

  /** Pis whose last_seen or count has not reached the disk yet (an asynchronous store: its queue yet; see {@link settled}). */
  get unflushed (): number {
    return this.#dirty.size
  }

  /**
   * Writes every dirty Pi's last_seen and count, in one transaction (an
   * asynchronous store: queues them so).
   * @returns how many rows it wrote
   * @throws what SQLite throws (the rows stay dirty)
   */
  flush (): number {
    if (this.#flushTimer) clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    const count = this.#dirty.size
    if (count === 0) return 0
    const seen: DeviceSeen[] = []
    for (const id of this.#dirty) {
      const device = this.#devices.get(id)
      // values, not the records: an asynchronous store writes them after touch() moved lastSeen on
      if (device) seen.push({ id, lastSeen: device.lastSeen, keepAlives: device.keepAlives })
    }
    this.#rows.writeSeen(seen)
    this.#dirty.clear()
    return count
  }

  /**
   * Flushes and stops the flush timer (before the database closes); a Pi
   * heard from after this is written at once. An asynchronous store may
   * still be writing: await {@link settled} before its database closes.
   */
  close (): void {
    this.#closed = true
    this.flush()
  }

  /**
   * Resolves once every row write made so far has reached the database: at
   * once with SQLite (written in the call); with PostgreSQL when its queue
   * has caught up, retrying while the database refuses.
   * @throws when the database closed before some writes could be made
   */
  async settled (): Promise<void> {
    await this.#rows.settled()
  }

  #write (device: DeviceRecord): void {
    this.#rows.upsert(device)
    this.#dirty.delete(device.id)
  }

  /** Queues a Pi for the next flush, which runs at most `flushMs` after the first change it carries. */
  #markDirty (id: number): void {
    this.#dirty.add(id)
    if (!this.#closed) this.#scheduleFlush()
    else if (this.#rows.open) this.flush()
  }

  #scheduleFlush (): void {
    if (this.#flushTimer) return
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined
      if (!this.#rows.open) return
      try {
        this.flush()
      } catch (err) {
        this.#onFlushError(err)
        this.#scheduleFlush() // the rows are still dirty: again after another interval
      }
    }, this.#flushMs)
    this.#flushTimer.unref() // never the reason the process stays up; close() flushes
  }

  #isStale (heardAt: number, now: number): boolean {
    return now - heardAt >= this.staleAfterMs
  }
}

function toLiveDevice (device: DeviceRecord, lastSeen: number): LiveDevice {
  return { addr: device.addr, name: device.name, id: device.id, lastSeen: new Date(lastSeen).toISOString() }
}

/** A better-sqlite3 connection rather than a store (its `prepare`): what callers before the stores passed. */
function isSqlite (rows: DeviceRowStore | Database): rows is Database {
  return typeof (rows as Partial<Database>).prepare === 'function'
}
