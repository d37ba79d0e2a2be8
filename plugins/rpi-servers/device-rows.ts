import type { Database, Statement } from 'better-sqlite3'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Postgres } from '../../core/postgres.js'
import { RPI_SERVERS_PG_SCHEMA } from './rpi-servers-schema.js'

/** A Pi's row of `rpi_devices`, as the registry holds it; times are epoch milliseconds. */
export interface DeviceRow {
  id: number
  /** The NAME its keep-alives carry ('' before its first one). */
  name: string
  /** The name a user gave its door; null = `name`. */
  displayName: string | null
  addr: string
  firstSeen: number
  lastSeen: number
  keepAlives: number
}

/** What a flush writes of a Pi: when it was last seen and how many keep-alives it sent. */
export interface DeviceSeen {
  id: number
  lastSeen: number
  keepAlives: number
}

/**
 * Where the registry's rows live (registry.ts): read once when it is built,
 * then written through. Every write takes absolute values from memory, and
 * a row's `last_seen` never goes back, so a write repeated or overtaken by a
 * later one leaves the right row. A synchronous store (SQLite) has written
 * when a call returns and throws what the database refuses; an asynchronous
 * one (PostgreSQL) queues the write in call order, throws only what it can
 * tell at once (an ID out of range), reports later failures through
 * {@link onWriteError} and keeps trying, and {@link settled} says when
 * everything written so far has reached the database.
 */
export interface DeviceRowStore {
  /** Whether the store still takes writes (false once its database closed). */
  readonly open: boolean
  /** Every row: SQLite reads them now, PostgreSQL as they were when the store opened. */
  load (): DeviceRow[]
  /**
   * Inserts a Pi, or updates its name, address and count (its `first_seen`
   * and display name stay as the row has them; `last_seen` only moves forward).
   * @throws when the row is refused (e.g. an ID outside 0..32767, `CHECK constraint failed`)
   */
  upsert (device: Omit<DeviceRow, 'displayName'>): void
  /** Writes the last-seen times (never back) and counts of these Pis, all in one transaction; a Pi without a row is skipped. */
  writeSeen (devices: readonly DeviceSeen[]): void
  /** Deletes a Pi's row (none: nothing happens). */
  delete (id: number): void
  /** Sets the name a user gave a Pi's door; null goes back to the Pi's NAME. */
  setDisplayName (id: number, displayName: string | null): void
  /** Hears of a write that failed after its call returned (an asynchronous store; it tries again). Replaces an earlier listener. */
  onWriteError (listener: (err: unknown) => void): void
  /**
   * Resolves once every write made before the call has reached the database
   * (at once for SQLite, whose writes are done when they return); rejects if
   * the database closed before some of them could be written.
   */
  settled (): Promise<void>
}

/** The columns of `rpi_devices`, in both engines. */
const COLUMNS = 'id, name, display_name, addr, first_seen, last_seen, keep_alives'

interface SqliteRow {
  id: number
  name: string
  display_name: string | null
  addr: string
  first_seen: number
  last_seen: number
  keep_alives: number
}

/**
 * The rows in the service's SQLite database: `rpi_devices` of
 * `RPI_SERVERS_SCHEMA` (rpi-servers-schema.ts), migrated by the area's plugin
 * before it builds this. Every write is done when its call returns, and
 * throws what SQLite refuses.
 */
export class SqliteDeviceRows implements DeviceRowStore {
  readonly #db: Database
  readonly #writeRow: Statement<[number, string, string, number, number, number]>
  readonly #writeSeen: Statement<[number, number, number]>
  readonly #deleteRow: Statement<[number]>
  readonly #writeDisplayName: Statement<[string | null, number]>
  readonly #writeSeenAll: (devices: readonly DeviceSeen[]) => void

  constructor (db: Database) {
    this.#db = db
    // absolute values from memory, the row's first_seen kept; last_seen never goes back
    this.#writeRow = db.prepare(`INSERT INTO rpi_devices (id, name, addr, first_seen, last_seen, keep_alives) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, addr = excluded.addr,
        last_seen = MAX(last_seen, excluded.last_seen), keep_alives = excluded.keep_alives`)
    this.#writeSeen = db.prepare('UPDATE rpi_devices SET last_seen = MAX(last_seen, ?), keep_alives = ? WHERE id = ?')
    this.#deleteRow = db.prepare('DELETE FROM rpi_devices WHERE id = ?')
    this.#writeDisplayName = db.prepare('UPDATE rpi_devices SET display_name = ? WHERE id = ?')
    this.#writeSeenAll = db.transaction((devices: readonly DeviceSeen[]) => {
      for (const device of devices) this.#writeSeen.run(device.lastSeen, device.keepAlives, device.id)
    })
  }

  get open (): boolean {
    return this.#db.open
  }

  load (): DeviceRow[] {
    return (this.#db.prepare(`SELECT ${COLUMNS} FROM rpi_devices`).all() as SqliteRow[]).map(fromRow)
  }

  upsert (device: Omit<DeviceRow, 'displayName'>): void {
    this.#writeRow.run(device.id, device.name, device.addr, device.firstSeen, device.lastSeen, device.keepAlives)
  }

  writeSeen (devices: readonly DeviceSeen[]): void {
    this.#writeSeenAll(devices)
  }

  delete (id: number): void {
    this.#deleteRow.run(id)
  }

  setDisplayName (id: number, displayName: string | null): void {
    this.#writeDisplayName.run(displayName, id)
  }

  onWriteError (): void {
    // every write fails in its call: there is nothing to hear later
  }

  async settled (): Promise<void> {}
}

/** How {@link PostgresDeviceRows} tries a failed write again. */
export interface PostgresDeviceRowsOptions {
  /** Wait before the first retry of a failed write, in ms (default 100), doubled each time it fails again. */
  retryMs?: number
  /** Longest wait between retries, in ms (default 5000). */
  retryMaxMs?: number
}

/** One queued write: a statement, or a flush's last-seen times, which later flushes join while it waits. */
type QueuedWrite =
  | { kind: 'statement', sql: string, values: unknown[] }
  | { kind: 'seen', devices: Map<number, DeviceSeen>, started: boolean }

/** As pg returns a row: bigint columns come as strings (they may exceed 2^53; these never do). */
interface PgRow {
  id: number
  name: string
  display_name: string | null
  addr: string
  first_seen: string
  last_seen: string
  keep_alives: string
}

const PG_UPSERT = `INSERT INTO rpi_devices (id, name, addr, first_seen, last_seen, keep_alives) VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, addr = excluded.addr,
    last_seen = GREATEST(rpi_devices.last_seen, excluded.last_seen), keep_alives = excluded.keep_alives`
// one statement for a whole flush: one round trip, one transaction
const PG_WRITE_SEEN = `UPDATE rpi_devices AS d SET last_seen = GREATEST(d.last_seen, v.last_seen), keep_alives = v.keep_alives
  FROM unnest($1::integer[], $2::bigint[], $3::bigint[]) AS v (id, last_seen, keep_alives) WHERE d.id = v.id`
const PG_DELETE = 'DELETE FROM rpi_devices WHERE id = $1'
const PG_WRITE_DISPLAY_NAME = 'UPDATE rpi_devices SET display_name = $2 WHERE id = $1'

/** The IDs `rpi_devices` takes (its CHECK): refused in the call, as SQLite refuses them, rather than by a write that already left. */
const MAX_DEVICE_ID = 32767

/**
 * The rows in PostgreSQL (`DATABASE_URL`): `rpi_devices` of
 * `RPI_SERVERS_PG_SCHEMA` (rpi-servers-schema.ts), the same columns as
 * SQLite's `RPI_SERVERS_SCHEMA`, which {@link PostgresDeviceRows.open}
 * migrates before it reads them.
 *
 * The registry's API is synchronous, so every write goes into one queue,
 * written in call order by a single loop, one statement at a time (a flush's
 * Pis in one statement). A write that fails is reported
 * ({@link DeviceRowStore.onWriteError}) and tried again, first after
 * `retryMs`, then ever less often, and what queues behind it waits: nothing
 * overtakes it, and last-seen times that queue meanwhile join one batch, so
 * an outage holds at most two. Only a write the database refuses outright
 * (bad data, a constraint; what SQLite would have thrown in the call) is
 * dropped once reported. The queue is lost only when the pool closes first:
 * the area's close awaits {@link settled} before that.
 */
export class PostgresDeviceRows implements DeviceRowStore {
  readonly #pg: Postgres
  readonly #rows: DeviceRow[]
  readonly #retryMs: number
  readonly #retryMaxMs: number
  readonly #queue: QueuedWrite[] = []
  /** Writes queued since the store opened, and how many of them are done (in order: the first `#done`). */
  #queued = 0
  #done = 0
  #draining = false
  #waiters: Array<{ upTo: number, resolve: () => void, reject: (err: Error) => void }> = []
  #onError: (err: unknown) => void = () => {}

  private constructor (pg: Postgres, rows: DeviceRow[], options: PostgresDeviceRowsOptions) {
    this.#pg = pg
    this.#rows = rows
    this.#retryMs = options.retryMs ?? 100
    this.#retryMaxMs = options.retryMaxMs ?? 5000
  }

  /** Migrates the area's tables on `pg` and reads every row, before the registry is built over them. */
  static async open (pg: Postgres, options: PostgresDeviceRowsOptions = {}): Promise<PostgresDeviceRows> {
    await pg.migrate(RPI_SERVERS_PG_SCHEMA)
    return new PostgresDeviceRows(pg, await readRows(pg), options)
  }

  /**
   * Every row as the database holds it now, with what other instances of a
   * cluster wrote since this one opened (new Pis, names given to doors).
   */
  async readAll (): Promise<DeviceRow[]> {
    return readRows(this.#pg)
  }

  get open (): boolean {
    return !this.#pg.closed
  }

  /** Writes queued and not yet done. */
  get pending (): number {
    return this.#queued - this.#done
  }

  load (): DeviceRow[] {
    return this.#rows.map((row) => ({ ...row }))
  }

  upsert (device: Omit<DeviceRow, 'displayName'>): void {
    if (!Number.isInteger(device.id) || device.id < 0 || device.id > MAX_DEVICE_ID) {
      throw new RangeError(`CHECK constraint failed: id BETWEEN 0 AND ${MAX_DEVICE_ID} (rpi_devices.id ${device.id})`)
    }
    // the values are copied now: the registry goes on changing its records
    this.#push({ kind: 'statement', sql: PG_UPSERT, values: [device.id, device.name, device.addr, device.firstSeen, device.lastSeen, device.keepAlives] })
  }

  writeSeen (devices: readonly DeviceSeen[]): void {
    if (devices.length === 0) return
    const tail = this.#queue.at(-1)
    if (tail?.kind === 'seen' && !tail.started) {
      // still waiting behind an earlier write: this flush joins it (counts are absolute, last_seen the later)
      this.#assertOpen()
      for (const { id, lastSeen, keepAlives } of devices) {
        tail.devices.set(id, { id, lastSeen: Math.max(lastSeen, tail.devices.get(id)?.lastSeen ?? lastSeen), keepAlives })
      }
      return
    }
    this.#push({ kind: 'seen', devices: new Map(devices.map(({ id, lastSeen, keepAlives }) => [id, { id, lastSeen, keepAlives }])), started: false })
  }

  delete (id: number): void {
    this.#push({ kind: 'statement', sql: PG_DELETE, values: [id] })
  }

  setDisplayName (id: number, displayName: string | null): void {
    this.#push({ kind: 'statement', sql: PG_WRITE_DISPLAY_NAME, values: [id, displayName] })
  }

  onWriteError (listener: (err: unknown) => void): void {
    this.#onError = listener
  }

  settled (): Promise<void> {
    if (this.#done === this.#queued) return Promise.resolve()
    return new Promise((resolve, reject) => { this.#waiters.push({ upTo: this.#queued, resolve, reject }) })
  }

  #assertOpen (): void {
    // as a closed SQLite connection throws: after close, a write has nowhere to go
    if (this.#pg.closed) throw new Error(`the PostgreSQL pool (${this.#pg.where}) is closed: rpi_devices cannot be written`)
  }

  #push (write: QueuedWrite): void {
    this.#assertOpen()
    this.#queue.push(write)
    this.#queued++
    if (!this.#draining) {
      this.#drain().catch((err: unknown) => { this.#report(err) })
    }
  }

  /** Writes the queue in order until it is empty; the only loop that writes. */
  async #drain (): Promise<void> {
    this.#draining = true
    let wait = this.#retryMs
    try {
      while (this.#queue.length > 0) {
        const write = this.#queue[0]
        if (write.kind === 'seen') write.started = true
        try {
          await this.#write(write)
          wait = this.#retryMs
        } catch (err) {
          if (this.#pg.closed) {
            this.#loseAll(err)
            return
          }
          this.#report(err)
          if (!isRefused(err)) {
            // the database is away or busy: this write again later, nothing overtaking it
            await sleep(wait, undefined, { signal: this.#pg.signal }).catch(() => {})
            wait = Math.min(wait * 2, this.#retryMaxMs)
            continue
          }
          // refused outright: trying again would block the queue forever; reported above, dropped here
        }
        this.#queue.shift()
        this.#done++
        this.#wake()
      }
    } finally {
      this.#draining = false
    }
  }

  async #write (write: QueuedWrite): Promise<void> {
    if (write.kind === 'statement') {
      await this.#pg.query(write.sql, write.values)
      return
    }
    // by ID: two instances flushing the same Pis lock their rows in the same order
    const devices = [...write.devices.values()].sort((a, b) => a.id - b.id)
    await this.#pg.query(PG_WRITE_SEEN, [devices.map((d) => d.id), devices.map((d) => d.lastSeen), devices.map((d) => d.keepAlives)])
  }

  /** The pool closed with writes queued: they are lost, and whoever awaits {@link settled} hears so. */
  #loseAll (cause: unknown): void {
    const lost = this.#queue.length
    this.#queue.length = 0
    this.#done = this.#queued
    const err = new Error(`${lost} write(s) to rpi_devices were lost: the PostgreSQL pool (${this.#pg.where}) closed before they could be written`,
      { cause })
    this.#report(err)
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter.reject(err)
  }

  #wake (): void {
    if (this.#waiters.length === 0) return
    const ready = this.#waiters.filter((waiter) => waiter.upTo <= this.#done)
    if (ready.length === 0) return
    this.#waiters = this.#waiters.filter((waiter) => waiter.upTo > this.#done)
    for (const waiter of ready) waiter.resolve()
  }

  #report (err: unknown): void {
    try {
      this.#onError(err)
    } catch {
      // a listener that throws must not stop the writes
    }
  }
}

/**
 * Whether PostgreSQL refused the write itself, so that trying it again can
 * only fail again: data exceptions (22), constraint violations (23), and
 * statements it cannot run (42: no such table or column, no privilege).
 * Anything else (a lost connection, a full disk, a deadlock) may pass later.
 */
function isRefused (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^(?:22|23|42)[0-9A-Z]{3}$/.test(code)
}

function fromRow (row: SqliteRow): DeviceRow {
  return {
    id: row.id,
    name: row.name,
    displayName: row.display_name,
    addr: row.addr,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    keepAlives: row.keep_alives
  }
}

/** Every row of `rpi_devices` (the bigint columns as numbers: epoch ms and counts fit a double). */
async function readRows (pg: Postgres): Promise<DeviceRow[]> {
  const { rows } = await pg.query<PgRow>(`SELECT ${COLUMNS} FROM rpi_devices`)
  return rows.map((row) => fromRow({ ...row, first_seen: Number(row.first_seen), last_seen: Number(row.last_seen), keep_alives: Number(row.keep_alives) }))
}
