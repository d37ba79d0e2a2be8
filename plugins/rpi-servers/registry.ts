import type { Database, Statement } from 'better-sqlite3'
import { EventEmitter } from 'node:events'
import type { KnownDevice, LiveDevice } from '../../schemas/rpi-servers.js'

/** One keep-alive: who called, from where. */
export interface KeepAlive {
  id: number
  name: string
  addr: string
}

export interface DeviceRegistryOptions {
  /** Milliseconds of silence after which a Pi is no longer live. */
  staleAfterMs: number
  /** Clock in epoch milliseconds; tests inject their own. */
  now?: () => number
}

interface LiveEntry {
  id: number
  name: string
  addr: string
  lastSeen: number
}

interface DeviceRow {
  id: number
  name: string
  addr: string
  first_seen: number
  last_seen: number
  keep_alives: number
}

/** How often a Pi's `last_seen` is written for frames alone (a keep-alive always writes). */
const FRAME_TOUCH_WRITE_MS = 10_000

/** The registry's events: a Pi came live (new, or back from silence), went stale, or was seen for the first time ever. */
export interface DeviceEvents {
  live: [LiveDevice]
  stale: [number]
  known: [number]
}

/**
 * The Pis: which are live (heard from within `staleAfterMs`, in memory) and
 * which were ever seen (SQLite, so history survives a restart). A keep-alive
 * or a batch of frames makes a Pi live; a restart starts with none live.
 */
export class DeviceRegistry extends EventEmitter<DeviceEvents> {
  readonly staleAfterMs: number
  private readonly now: () => number
  private readonly liveById = new Map<number, LiveEntry>()
  private readonly upsert: Statement<[number, string, string, number, number]>
  private readonly selectAll: Statement<[], DeviceRow>
  private readonly insertSeen: Statement<[number, string, number, number]>
  private readonly updateSeen: Statement<[number, number]>
  private readonly selectIds: Statement<[], { id: number }>
  private readonly deleteOne: Statement<[number]>
  private readonly knownIds = new Set<number>()
  /** When frames alone last wrote a Pi's last_seen. */
  private readonly seenWritten = new Map<number, number>()

  constructor (db: Database, options: DeviceRegistryOptions) {
    super()
    this.staleAfterMs = options.staleAfterMs
    this.now = options.now ?? Date.now
    this.upsert = db.prepare(`INSERT INTO rpi_devices (id, name, addr, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, addr = excluded.addr,
        last_seen = excluded.last_seen, keep_alives = keep_alives + 1`)
    this.selectAll = db.prepare('SELECT id, name, addr, first_seen, last_seen, keep_alives FROM rpi_devices ORDER BY id')
    // a Pi known only from its frames has no name yet and no keep-alive counted
    this.insertSeen = db.prepare('INSERT INTO rpi_devices (id, name, addr, first_seen, last_seen, keep_alives) VALUES (?, \'\', ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING')
    this.updateSeen = db.prepare('UPDATE rpi_devices SET last_seen = MAX(last_seen, ?) WHERE id = ?')
    this.selectIds = db.prepare('SELECT id FROM rpi_devices')
    this.deleteOne = db.prepare('DELETE FROM rpi_devices WHERE id = ?')
    for (const { id } of this.selectIds.all()) this.knownIds.add(id)
  }

  /** Whether a Pi was ever heard from. */
  isKnown (id: number): boolean {
    return this.knownIds.has(id)
  }

  /** Whether a Pi is live now. */
  isLive (id: number): boolean {
    const entry = this.liveById.get(id)
    return entry !== undefined && !this.isStale(entry, this.now())
  }

  /**
   * Frames from a Pi imply its keep-alive: it is live from now on. Its
   * `last_seen` reaches the disk at most every few seconds, so a Pi posting
   * 20 batches a second costs no write per batch.
   */
  touch (id: number, addr: string): void {
    const now = this.now()
    const before = this.liveById.get(id)
    const cameLive = before === undefined || this.isStale(before, now)
    if (!this.knownIds.has(id)) {
      this.insertSeen.run(id, addr, now, now)
      this.seenWritten.set(id, now)
    } else if (now - (this.seenWritten.get(id) ?? 0) >= FRAME_TOUCH_WRITE_MS) {
      this.updateSeen.run(now, id)
      this.seenWritten.set(id, now)
    }
    const entry: LiveEntry = before ? { ...before, lastSeen: now } : { id, name: this.nameOf(id), addr, lastSeen: now }
    this.liveById.set(id, entry)
    this.#remember(id)
    if (cameLive) this.emit('live', toLiveDevice(entry))
  }

  /**
   * Forgets a Pi: its row and its live entry (a Pi that posts again comes back as new).
   * @returns whether it was known
   */
  forget (id: number): boolean {
    const known = this.knownIds.delete(id)
    this.liveById.delete(id)
    this.seenWritten.delete(id)
    this.deleteOne.run(id)
    return known
  }

  /** A known Pi's name ('' when it never sent a keep-alive). */
  nameOf (id: number): string {
    return this.liveById.get(id)?.name ?? this.selectAll.all().find((row) => row.id === id)?.name ?? ''
  }

  #remember (id: number): void {
    if (this.knownIds.has(id)) return
    this.knownIds.add(id)
    this.emit('known', id)
  }

  /**
   * Records a keep-alive: the Pi is live from now on and remembered.
   * @returns the device as listed, and whether it was not live before (new, or back from silence)
   */
  keepAlive (call: KeepAlive): { device: LiveDevice, cameLive: boolean } {
    const now = this.now()
    const before = this.liveById.get(call.id)
    const cameLive = before === undefined || this.isStale(before, now)
    this.upsert.run(call.id, call.name, call.addr, now, now)
    const entry: LiveEntry = { id: call.id, name: call.name, addr: call.addr, lastSeen: now }
    this.liveById.set(call.id, entry)
    this.seenWritten.set(call.id, now)
    this.#remember(call.id)
    if (cameLive) this.emit('live', toLiveDevice(entry))
    return { device: toLiveDevice(entry), cameLive }
  }

  /** The live Pis by ID. Staleness is checked here too, so the list is exact between sweeps. */
  live (): LiveDevice[] {
    const now = this.now()
    return [...this.liveById.values()]
      .filter((entry) => !this.isStale(entry, now))
      .sort((a, b) => a.id - b.id)
      .map(toLiveDevice)
  }

  /** How many Pis are live now. */
  liveCount (): number {
    const now = this.now()
    let count = 0
    for (const entry of this.liveById.values()) if (!this.isStale(entry, now)) count++
    return count
  }

  /** Every Pi ever seen (from SQLite), with whether it is live now. */
  known (): KnownDevice[] {
    const now = this.now()
    return this.selectAll.all().map((row) => {
      const entry = this.liveById.get(row.id)
      return {
        addr: row.addr,
        name: row.name,
        id: row.id,
        firstSeen: new Date(row.first_seen).toISOString(),
        lastSeen: new Date(row.last_seen).toISOString(),
        keepAlives: row.keep_alives,
        live: entry !== undefined && !this.isStale(entry, now)
      }
    })
  }

  /**
   * Drops the Pis silent for `staleAfterMs` from the live set.
   * @returns the IDs dropped
   */
  sweep (): number[] {
    const now = this.now()
    const dropped: number[] = []
    for (const [id, entry] of this.liveById) {
      if (this.isStale(entry, now)) {
        this.liveById.delete(id)
        dropped.push(id)
        this.emit('stale', id)
      }
    }
    return dropped
  }

  private isStale (entry: LiveEntry, now: number): boolean {
    return now - entry.lastSeen >= this.staleAfterMs
  }
}

function toLiveDevice (entry: LiveEntry): LiveDevice {
  return { addr: entry.addr, name: entry.name, id: entry.id, lastSeen: new Date(entry.lastSeen).toISOString() }
}
