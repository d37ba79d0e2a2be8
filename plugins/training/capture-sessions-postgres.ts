/**
 * Capture sessions on PostgreSQL (the table of `CAPTURES_SCHEMA`, made there by
 * `CAPTURES_PG_SCHEMA`), shared by every instance of a cluster. A
 * session is a row; what each instance keeps in memory is a copy, kept
 * current by `NOTIFY doorsense_captures` (payload: the device) sent in the
 * transaction of every change, so a capture opened through one instance
 * labels the frames another takes, within the notification's delay.
 *
 * Labelling is serialised on the session's row (`SELECT … FOR UPDATE`): the
 * frames a session wants are counted across instances, never past
 * `frames_wanted`, and a batch id (the frame stream's message id) is
 * recorded, so a batch retried through another instance is labelled once.
 * Every instance holds a timer for the open sessions it knows; whichever
 * fires first records the end, once (the UPDATE requires `state = 'open'`).
 */
import { EventEmitter } from 'node:events'
import type { PoolClient } from 'pg'
import type { Postgres } from '../../core/postgres.js'
import type { StoreTransaction } from '../../core/store-transaction.js'
import type { CaptureState, CaptureStatus, SampleSource } from '../../schemas/training.js'
import type { SampleStore } from '../../ml/store/sample-store.js'
import {
  alreadyCapturing, isOpenAt, ownSamples, statusOf,
  type CancelOptions, type CaptureOptions, type CaptureSessions, type RestoredCaptures, type Session
} from './capture-sessions.js'
import { CAPTURES_PG_SCHEMA } from './captures-schema.js'

/** Where every change of a session is told, with the device as payload. */
const CHANGED_CHANNEL = 'doorsense_captures'

interface SessionRow {
  device: number
  angle: number
  started_at: string
  ends_at: string
  frames_wanted: number | null
  source: SampleSource | null
  after_sample: string
  state: CaptureState
  frames_stored: number
  frames_dropped: number | null
  resumed_at: string | null
}

export interface PostgresCaptureSessionsOptions {
  db: Postgres
  samples: SampleStore
  /** Hears of each session this instance ended (time up, frames reached, cancelled), e.g. to log what it stored. */
  onEnded?: (status: CaptureStatus) => void
  now?: () => number
}

/** A session as memory holds it: no timer of its own here (see #timers). */
type KnownSession = Omit<Session, 'timer'>

export class PostgresCaptureSessions extends EventEmitter<{ changed: [CaptureStatus] }> implements CaptureSessions {
  readonly dedupesBatches = true
  readonly #db: Postgres
  readonly #samples: SampleStore
  readonly #now: () => number
  readonly #onEnded: ((status: CaptureStatus) => void) | undefined
  readonly #sessions = new Map<number, KnownSession>()
  readonly #timers = new Map<number, NodeJS.Timeout>()
  #unlisten: (() => void) | undefined
  #closed = false

  private constructor (options: PostgresCaptureSessionsOptions) {
    super()
    this.#db = options.db
    this.#samples = options.samples
    this.#now = options.now ?? Date.now
    this.#onEnded = options.onEnded
  }

  /** Migrates the captures area's tables on `db` and listens for every instance's changes. */
  static async open (options: PostgresCaptureSessionsOptions): Promise<PostgresCaptureSessions> {
    await options.db.migrate(CAPTURES_PG_SCHEMA)
    const sessions = new PostgresCaptureSessions(options)
    sessions.#unlisten = await options.db.listen(CHANGED_CHANNEL, {
      notified: (payload) => { sessions.#reload(Number(payload)) },
      // changes may have been missed meanwhile: read them all again
      reconnected: () => { sessions.#reloadAll().catch(() => {}) }
    })
    return sessions
  }

  /**
   * Reads every device's last session. An open one whose time ran out with
   * no instance there to end it is recorded interrupted (or finished, when
   * it had its frames), as on SQLite; one still running is only taken in,
   * not "resumed": in a cluster it may never have stopped.
   */
  async restore (): Promise<RestoredCaptures> {
    const restored: RestoredCaptures = { resumed: [], interrupted: [] }
    for (const row of await this.#rows()) {
      const session = sessionOf(row)
      if (session.state === 'open' && !isOpenAt(session, this.#now())) {
        const ended = session.framesWanted !== undefined && session.framesStored >= session.framesWanted ? 'finished' : 'interrupted'
        const recorded = await this.#endIfOpen(session, ended, session.endsAt)
        if (recorded) this.#take(recorded)
        if (recorded?.state === 'interrupted') restored.interrupted.push(statusOf(recorded, this.#now()))
        continue
      }
      this.#take(session)
    }
    return restored
  }

  async start (device: number, angle: number, seconds: number, options: CaptureOptions = {}): Promise<CaptureStatus> {
    const startedAt = this.#now()
    const session = await this.#db.transaction(async (client) => {
      const [open] = await sessionRows(client, 'SELECT * FROM capture_sessions WHERE device = $1 FOR UPDATE', [device])
      if (open && isOpenAt(sessionOf(open), startedAt)) throw alreadyCapturing(sessionOf(open), startedAt)
      // after the lock: a sample labelled by a session of this device before it is older than this mark
      const afterSample = await this.#samples.lastId()
      await client.query('DELETE FROM capture_batches WHERE device = $1', [device])
      const [row] = await sessionRows(client, `INSERT INTO capture_sessions
        (device, angle, started_at, ends_at, frames_wanted, source, after_sample, state, frames_stored, frames_dropped, resumed_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', 0, NULL, NULL)
        ON CONFLICT (device) DO UPDATE SET angle = excluded.angle, started_at = excluded.started_at, ends_at = excluded.ends_at,
          frames_wanted = excluded.frames_wanted, source = excluded.source, after_sample = excluded.after_sample, state = 'open',
          frames_stored = 0, frames_dropped = NULL, resumed_at = NULL
        RETURNING *`, [device, angle, startedAt, startedAt + seconds * 1000, options.frames ?? null, options.source ?? null, afterSample])
      await notify(client, device)
      return sessionOf(row)
    })
    this.#take(session)
    return statusOf(session, this.#now())
  }

  async cancel (device: number, options: CancelOptions = {}): Promise<CaptureStatus | undefined> {
    const now = this.#now()
    const known = this.#sessions.get(device)
    if (!known || !isOpenAt(known, now)) return undefined
    const ended = await this.#endIfOpen(known, 'cancelled', now)
    if (!ended) return undefined
    // ended first, in its own transaction: no instance labels a frame of it after the delete
    if (options.keepFrames === false) {
      const dropped = await this.#samples.delete('csi', ownSamples(ended))
      const [row] = await sessionRows(this.#db, `UPDATE capture_sessions SET frames_dropped = $2, frames_stored = 0
        WHERE device = $1 AND started_at = $3 RETURNING *`, [device, dropped, ended.startedAt])
      await this.#db.query('SELECT pg_notify($1, $2)', [CHANGED_CHANNEL, String(device)])
      if (row) return this.#ended(sessionOf(row))
    }
    return this.#ended(ended)
  }

  status (device: number): CaptureStatus | undefined {
    const session = this.#sessions.get(device)
    return session && statusOf(session, this.#now())
  }

  recordWithin (tx: StoreTransaction, device: number, frames: readonly Float32Array[], source: SampleSource, batch?: string): number | Promise<number> {
    const known = this.#sessions.get(device)
    // what memory knows decides whether to ask at all: a device without a session costs no query
    if (!known || !isOpenAt(known, this.#now()) || frames.length === 0) return 0
    const record = async (client: PoolClient): Promise<number> => this.#record(client, device, frames, source, batch)
    return tx.client ? record(tx.client) : this.#db.transaction(record)
  }

  async #record (client: PoolClient, device: number, frames: readonly Float32Array[], source: SampleSource, batch: string | undefined): Promise<number> {
    const [row] = await sessionRows(client, 'SELECT * FROM capture_sessions WHERE device = $1 FOR UPDATE', [device])
    const now = this.#now()
    if (!row) return 0
    const session = sessionOf(row)
    if (!isOpenAt(session, now)) return 0
    if (batch !== undefined) {
      const { rowCount } = await client.query('INSERT INTO capture_batches (device, batch) VALUES ($1, $2) ON CONFLICT DO NOTHING', [device, batch])
      if (rowCount === 0) return 0
    }
    const room = session.framesWanted === undefined ? frames.length : Math.min(frames.length, session.framesWanted - session.framesStored)
    if (room <= 0) return 0
    const taken = room < frames.length ? frames.slice(0, room) : frames
    await this.#samples.insertWithin({ client }, taken.map((features) => ({
      kind: 'csi' as const, angle: session.angle, features, device, source: session.source ?? source
    })))
    const reached = session.framesWanted !== undefined && session.framesStored + room >= session.framesWanted
    await client.query(reached
      ? "UPDATE capture_sessions SET frames_stored = frames_stored + $2, state = 'finished', ends_at = $3 WHERE device = $1"
      : 'UPDATE capture_sessions SET frames_stored = frames_stored + $2 WHERE device = $1', reached ? [device, room, now] : [device, room])
    await notify(client, device)
    if (reached) {
      const ended: KnownSession = { ...session, framesStored: session.framesStored + room, state: 'finished', endsAt: now }
      // told once the caller's transaction is done with: a listener must never see a session its commit could still undo
      setImmediate(() => this.#ended(ended))
    }
    return room
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#unlisten?.()
    this.#unlisten = undefined
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }

  /**
   * Records the end of `session` if it is still the device's open one.
   * @returns the ended session, or undefined when another instance ended or replaced it first
   */
  async #endIfOpen (session: KnownSession, state: Exclude<CaptureState, 'open'>, endsAt: number): Promise<KnownSession | undefined> {
    return this.#db.transaction(async (client) => {
      const [row] = await sessionRows(client, `UPDATE capture_sessions SET state = $3, ends_at = LEAST(ends_at, $4)
        WHERE device = $1 AND started_at = $2 AND state = 'open' RETURNING *`, [session.device, session.startedAt, state, endsAt])
      if (!row) return undefined
      await notify(client, session.device)
      return sessionOf(row)
    })
  }

  /** Takes an ended session into memory and tells `onEnded`. */
  #ended (session: KnownSession): CaptureStatus {
    this.#take(session)
    const status = statusOf(session, this.#now())
    this.#onEnded?.(status)
    return status
  }

  /** Holds `session` as the device's, with a timer to record its end if it is open. */
  #take (session: KnownSession): void {
    if (this.#closed) return
    const timer = this.#timers.get(session.device)
    if (timer) clearTimeout(timer)
    this.#timers.delete(session.device)
    this.#sessions.set(session.device, session)
    const now = this.#now()
    if (!isOpenAt(session, now)) return
    this.#timers.set(session.device, setTimeout(() => {
      this.#timers.delete(session.device)
      this.#endIfOpen(session, 'finished', session.endsAt).then((ended) => { if (ended) this.#ended(ended) }, () => {})
    }, session.endsAt - now).unref())
  }

  /** A notification: reads the device's session again and tells `changed`. */
  #reload (device: number): void {
    sessionRows(this.#db, 'SELECT * FROM capture_sessions WHERE device = $1', [device]).then(([row]) => {
      if (!row || this.#closed) return
      const session = sessionOf(row)
      this.#take(session)
      this.emit('changed', statusOf(session, this.#now()))
    }, () => {})
  }

  async #reloadAll (): Promise<void> {
    for (const row of await this.#rows()) {
      const session = sessionOf(row)
      this.#take(session)
      this.emit('changed', statusOf(session, this.#now()))
    }
  }

  async #rows (): Promise<SessionRow[]> {
    return sessionRows(this.#db, 'SELECT * FROM capture_sessions')
  }
}

async function sessionRows (db: Pick<Postgres, 'query'> | PoolClient, text: string, values: unknown[] = []): Promise<SessionRow[]> {
  return (await (db as Pick<Postgres, 'query'>).query<SessionRow>(text, values)).rows
}

async function notify (client: PoolClient, device: number): Promise<void> {
  await client.query('SELECT pg_notify($1, $2)', [CHANGED_CHANNEL, String(device)])
}

/** A row as memory holds it (bigint columns come as text). */
function sessionOf (row: SessionRow): KnownSession {
  return {
    device: row.device,
    angle: row.angle,
    startedAt: Number(row.started_at),
    endsAt: Number(row.ends_at),
    afterSample: Number(row.after_sample),
    framesStored: row.frames_stored,
    framesWanted: row.frames_wanted ?? undefined,
    source: row.source ?? undefined,
    state: row.state,
    framesDropped: row.frames_dropped ?? undefined,
    resumedAt: row.resumed_at === null ? undefined : Number(row.resumed_at)
  }
}
