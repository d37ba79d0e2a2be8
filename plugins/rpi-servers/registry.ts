import type { Database, Statement } from 'better-sqlite3'
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

/**
 * The Pis: which are live (heard from within `staleAfterMs`, in memory) and
 * which were ever seen (SQLite, so history survives a restart). Only a
 * keep-alive makes a Pi live; a restart starts with none live.
 */
export class DeviceRegistry {
  readonly staleAfterMs: number
  private readonly now: () => number
  private readonly liveById = new Map<number, LiveEntry>()
  private readonly upsert: Statement<[number, string, string, number, number]>
  private readonly selectAll: Statement<[], DeviceRow>

  constructor (db: Database, options: DeviceRegistryOptions) {
    this.staleAfterMs = options.staleAfterMs
    this.now = options.now ?? Date.now
    this.upsert = db.prepare(`INSERT INTO rpi_devices (id, name, addr, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, addr = excluded.addr,
        last_seen = excluded.last_seen, keep_alives = keep_alives + 1`)
    this.selectAll = db.prepare('SELECT id, name, addr, first_seen, last_seen, keep_alives FROM rpi_devices ORDER BY id')
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
