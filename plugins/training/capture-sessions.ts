/**
 * Capture sessions: "the door of device 3 is held at 45° for the next 60 s".
 * While a session is open, the frames that device posts (to the frames and
 * inference routes) are also stored as samples labelled with that angle.
 *
 * Each device's open (or last) session is a row in SQLite with its deadline,
 * so a restart never loses one silently: a session whose time is not up is
 * resumed, one whose time ran out while the server was down is reported
 * `interrupted` with the frames it stored. A session's samples are the
 * device's captured samples stored after it opened (only captures store
 * those sources, and a device has one session at a time), so what it stored
 * is counted from the samples table, never written per frame.
 */
import { EventEmitter } from 'node:events'
import { ConflictError } from '../../core/errors.js'
import type { Storage } from '../../core/storage.js'
import type { MaybePromise, StoreTransaction } from '../../core/store-transaction.js'
import type { CaptureState, CaptureStatus, SampleSource } from '../../schemas/training.js'
import type { SampleFilter, SqliteSampleStore } from '../../ml/store/sample-store.js'
import { CAPTURES_SCHEMA } from './captures-schema.js'

/** The sources only a capture stores: a session's samples are the device's samples of these after it opened. */
const CAPTURED_SOURCES: readonly SampleSource[] = ['frames', 'inference', 'calibration']

/**
 * The capture sessions, on SQLite ({@link SqliteCaptureSessions}) or
 * PostgreSQL (`PostgresCaptureSessions`, capture-sessions-postgres.ts, which
 * every instance of a cluster shares: a capture started through one
 * instance labels the device's frames whichever instance takes them, and
 * any instance can cancel it or show its progress). Event `changed`
 * (CaptureStatus) when a session opens, stores frames or ends.
 */
export interface CaptureSessions extends EventEmitter<{ changed: [CaptureStatus] }> {
  /**
   * Whether {@link recordWithin} labels a batch once per `batch` id, however
   * often it is handed (PostgreSQL records the ids); SQLite does not, so a
   * caller must not hand it a batch it handed before.
   */
  readonly dedupesBatches: boolean
  /** Start-up: reads every device's last session back; see each implementation for what it resumes. Call once, before frames arrive. */
  restore (): Promise<RestoredCaptures>
  /**
   * Opens a session: the device's next frames are stored labelled `angle`
   * until `seconds` pass or `options.frames` are stored.
   * @throws ConflictError (409) while that device's session is open
   */
  start (device: number, angle: number, seconds: number, options?: CaptureOptions): Promise<CaptureStatus>
  /**
   * Ends the device's open session now; the frames stored so far stay unless
   * `options.keepFrames` is false. @returns its final status, or undefined when none was open
   */
  cancel (device: number, options?: CancelOptions): Promise<CaptureStatus | undefined>
  /** The device's open session, or its last one; undefined if it never had one. */
  status (device: number): CaptureStatus | undefined
  /**
   * Stores `frames` as samples, in the transaction `tx`
   * (core/store-transaction.ts), when a session is open for `device`.
   * @returns how many were stored (0 when no session is open)
   */
  recordWithin (tx: StoreTransaction, device: number, frames: readonly Float32Array[], source: SampleSource, batch?: string): MaybePromise<number>
  /** Stops every timer (app close). Open sessions stay open in the database. */
  close (): Promise<void>
}

/** A session as an implementation keeps it in memory. */
export interface Session {
  device: number
  angle: number
  /** Epoch ms. */
  startedAt: number
  endsAt: number
  /** The newest sample id when it opened. */
  afterSample: number
  framesStored: number
  /** Ends the session once this many are stored. */
  framesWanted: number | undefined
  /** Labels the samples with this source instead of the route's (a door calibration's own samples). */
  source: SampleSource | undefined
  /** How it ended; 'open' while it runs (or until its timer reports the end). */
  state: CaptureState
  framesDropped: number | undefined
  resumedAt: number | undefined
  timer: NodeJS.Timeout | undefined
}

interface SessionRow {
  device: number
  angle: number
  started_at: number
  ends_at: number
  frames_wanted: number | null
  source: SampleSource | null
  after_sample: number
  state: CaptureState
  frames_stored: number
  frames_dropped: number | null
  resumed_at: number | null
}

/** How a capture is asked for beyond device, angle and time. */
export interface CaptureOptions {
  /** End once this many frames are stored. */
  frames?: number
  /** The source its samples carry (default: the route the frames came by). */
  source?: SampleSource
}

/** How a capture is cancelled. */
export interface CancelOptions {
  /** Keep the frames stored so far as samples (default), or delete them. */
  keepFrames?: boolean
}

/** What {@link CaptureSessions.restore} found of the sessions open when the last process stopped. */
export interface RestoredCaptures {
  resumed: CaptureStatus[]
  interrupted: CaptureStatus[]
}

export interface CaptureSessionsOptions {
  storage: Storage
  samples: SqliteSampleStore
  /** Hears of each session when it ends (time up, frames reached, cancelled), e.g. to log what it stored. */
  onEnded?: (status: CaptureStatus) => void
  now?: () => number
}

/**
 * The open (and the last finished) session of each device, in the app's
 * SQLite database. Every write is done when its call returns, so
 * {@link recordWithin} composes inside the frames' transaction.
 */
export class SqliteCaptureSessions extends EventEmitter<{ changed: [CaptureStatus] }> implements CaptureSessions {
  readonly dedupesBatches = false
  readonly #db: Storage['db']
  readonly #store: SqliteSampleStore
  readonly #now: () => number
  readonly #sessions = new Map<number, Session>()
  readonly #onEnded: ((status: CaptureStatus) => void) | undefined

  constructor (options: CaptureSessionsOptions) {
    super()
    options.storage.migrate(CAPTURES_SCHEMA)
    this.#db = options.storage.db
    this.#store = options.samples
    this.#onEnded = options.onEnded
    this.#now = options.now ?? Date.now
  }

  /**
   * Start-up: reads every device's last session back. One the last process
   * left open is resumed when its time is not up (and it still wants
   * frames), else recorded as interrupted; either way with the frames it
   * stored. Call once, before frames arrive.
   */
  async restore (): Promise<RestoredCaptures> {
    const restored: RestoredCaptures = { resumed: [], interrupted: [] }
    const now = this.#now()
    for (const row of this.#db.prepare('SELECT * FROM capture_sessions').all() as SessionRow[]) {
      const session: Session = {
        device: row.device,
        angle: row.angle,
        startedAt: row.started_at,
        endsAt: row.ends_at,
        afterSample: row.after_sample,
        framesStored: row.frames_stored,
        framesWanted: row.frames_wanted ?? undefined,
        source: row.source ?? undefined,
        state: row.state,
        framesDropped: row.frames_dropped ?? undefined,
        resumedAt: row.resumed_at ?? undefined,
        timer: undefined
      }
      this.#sessions.set(session.device, session)
      if (session.state !== 'open') continue
      session.framesStored = await this.#store.countWhere('csi', ownSamples(session))
      if (now < session.endsAt && (session.framesWanted === undefined || session.framesStored < session.framesWanted)) {
        session.resumedAt = now
        session.timer = setTimeout(() => this.#end(session, 'finished'), session.endsAt - now).unref()
        this.#db.prepare('UPDATE capture_sessions SET resumed_at = ? WHERE device = ?').run(now, session.device)
        restored.resumed.push(statusOf(session, now))
      } else {
        // the deadline passed while no server listened: the frames it missed are not coming
        const ended = session.framesWanted !== undefined && session.framesStored >= session.framesWanted ? 'finished' : 'interrupted'
        this.#record(session, ended)
        if (ended === 'interrupted') restored.interrupted.push(statusOf(session, now))
      }
    }
    return restored
  }

  /**
   * Opens a session for `device`.
   * @throws ConflictError (409) while that device's previous session is still open
   */
  async start (device: number, angle: number, seconds: number, options: CaptureOptions = {}): Promise<CaptureStatus> {
    const open = this.#sessions.get(device)
    if (open && this.#isOpen(open)) throw alreadyCapturing(open, this.#now())
    const afterSample = await this.#store.lastId()
    if (open?.timer) clearTimeout(open.timer)
    const startedAt = this.#now()
    const session: Session = {
      device,
      angle,
      startedAt,
      endsAt: startedAt + seconds * 1000,
      afterSample,
      framesStored: 0,
      framesWanted: options.frames,
      source: options.source,
      state: 'open',
      framesDropped: undefined,
      resumedAt: undefined,
      timer: undefined
    }
    this.#db.prepare(`INSERT OR REPLACE INTO capture_sessions (device, angle, started_at, ends_at, frames_wanted, source, after_sample, state)
      VALUES (?, ?, ?, ?, ?, ?, ?, 'open')`).run(
      device, angle, session.startedAt, session.endsAt, session.framesWanted ?? null, session.source ?? null, session.afterSample
    )
    // record() checks the clock itself; the timer only reports the end
    session.timer = setTimeout(() => this.#end(session, 'finished'), seconds * 1000).unref()
    this.#sessions.set(device, session)
    const status = statusOf(session, this.#now())
    this.emit('changed', status)
    return status
  }

  /**
   * Ends the device's open session now. The frames it stored so far stay
   * as samples unless `keepFrames` is false, when they are deleted.
   * @returns its final status, or undefined when none was open
   */
  async cancel (device: number, options: CancelOptions = {}): Promise<CaptureStatus | undefined> {
    const session = this.#sessions.get(device)
    if (!session || !this.#isOpen(session)) return undefined
    session.endsAt = this.#now()
    if (options.keepFrames === false) {
      session.framesDropped = this.#store.deleteNow('csi', ownSamples(session))
      session.framesStored = 0
    }
    this.#end(session, 'cancelled')
    return statusOf(session, this.#now())
  }

  /** The device's open session, or its last one; undefined if it never had one. */
  status (device: number): CaptureStatus | undefined {
    const session = this.#sessions.get(device)
    return session && statusOf(session, this.#now())
  }

  recordWithin (tx: StoreTransaction, device: number, frames: readonly Float32Array[], source: SampleSource): number {
    const session = this.#sessions.get(device)
    if (!session || !this.#isOpen(session) || frames.length === 0) return 0
    const room = session.framesWanted === undefined ? frames.length : Math.min(frames.length, session.framesWanted - session.framesStored)
    const taken = room < frames.length ? frames.slice(0, room) : frames
    const labelled = taken.map((features) => ({ kind: 'csi' as const, angle: session.angle, features, device, source: session.source ?? source }))
    const stored = this.#store.insertWithin(tx, labelled)
    session.framesStored += stored
    if (session.framesWanted !== undefined && session.framesStored >= session.framesWanted) {
      session.endsAt = this.#now()
      this.#end(session, 'finished')
    } else {
      const status = statusOf(session, this.#now())
      // after the caller's transaction: a listener must never roll back stored frames
      queueMicrotask(() => this.emit('changed', status))
    }
    return stored
  }

  #end (session: Session, state: Exclude<CaptureState, 'open'>): void {
    if (session.timer) clearTimeout(session.timer)
    session.timer = undefined
    // a later session of the device has replaced this one's row (and memory): nothing of it to record
    if (this.#sessions.get(session.device) !== session || session.state !== 'open') return
    this.#record(session, state)
    const status = statusOf(session, this.#now())
    queueMicrotask(() => {
      this.#onEnded?.(status)
      this.emit('changed', status)
    })
  }

  /** Writes how a session ended. */
  #record (session: Session, state: Exclude<CaptureState, 'open'>): void {
    session.state = state
    this.#db.prepare('UPDATE capture_sessions SET state = ?, ends_at = ?, frames_stored = ?, frames_dropped = ? WHERE device = ?')
      .run(state, session.endsAt, session.framesStored, session.framesDropped ?? null, session.device)
  }

  /** Stops every timer (app close). Open sessions stay open in the database: the next start resumes them or reports them interrupted. */
  async close (): Promise<void> {
    for (const session of this.#sessions.values()) {
      if (session.timer) clearTimeout(session.timer)
      session.timer = undefined
    }
  }

  #isOpen (session: Session): boolean {
    return isOpenAt(session, this.#now())
  }
}

/** The samples a session stored: the device's captured samples after it opened, at its angle. */
export function ownSamples (session: Pick<Session, 'device' | 'angle' | 'afterSample' | 'source'>): SampleFilter {
  return {
    device: session.device,
    angle: session.angle,
    afterId: session.afterSample,
    sources: session.source === undefined ? CAPTURED_SOURCES : [session.source]
  }
}

/** The 409 of a start while the device's session is open. */
export function alreadyCapturing (open: Pick<Session, 'device' | 'angle' | 'endsAt'>, now: number): Error {
  return new ConflictError(`device ${open.device} is already being captured at ${open.angle}° for ${secondsLeft(open, now).toFixed(1)} more seconds; ` +
    'cancel it with POST /training/post/cancel_capture')
}

/** Whether a session still takes frames at `now`. */
export function isOpenAt (session: Pick<Session, 'state' | 'endsAt'>, now: number): boolean {
  return session.state === 'open' && now < session.endsAt
}

/** A session as the API shows it. */
export function statusOf (session: Omit<Session, 'timer'>, now: number): CaptureStatus {
  const active = isOpenAt(session, now)
  const status: CaptureStatus = {
    ID: session.device,
    angle: session.angle,
    active,
    // an open session past its deadline has finished; its timer just has not said so yet
    state: session.state === 'open' && !active ? 'finished' : session.state,
    framesStored: session.framesStored,
    ...(session.framesWanted === undefined ? {} : { framesWanted: session.framesWanted }),
    secondsLeft: active ? secondsLeft(session, now) : 0,
    startedAt: new Date(session.startedAt).toISOString(),
    endsAt: new Date(session.endsAt).toISOString()
  }
  if (session.framesDropped !== undefined) status.framesDropped = session.framesDropped
  if (session.resumedAt !== undefined) status.resumedAt = new Date(session.resumedAt).toISOString()
  return status
}

function secondsLeft (session: Pick<Session, 'endsAt'>, now: number): number {
  return Math.max(0, (session.endsAt - now) / 1000)
}
