/**
 * Capture sessions: "the door of device 3 is held at 45° for the next 60 s".
 * While a session is open, the frames that device posts (to the frames and
 * inference routes) are also stored as samples labelled with that angle.
 */
import { EventEmitter } from 'node:events'
import { ConflictError } from '../../core/errors.js'
import type { CaptureStatus, SampleSource } from '../../schemas/training.js'
import type { SampleStore } from '../../ml/sample-store.js'

interface Session {
  device: number
  angle: number
  startedAt: number
  endsAt: number
  framesStored: number
  /** Ends the session once this many are stored. */
  framesWanted: number | undefined
  /** Labels the samples with this source instead of the route's (a door calibration's own samples). */
  source: SampleSource | undefined
  timer: NodeJS.Timeout | undefined
}

/** How a capture is asked for beyond device, angle and time. */
export interface CaptureOptions {
  /** End once this many frames are stored. */
  frames?: number
  /** The source its samples carry (default: the route the frames came by). */
  source?: SampleSource
}

/**
 * The open (and the last finished) session of each device. Events:
 * `changed` (CaptureStatus) when a session opens, stores frames or ends.
 */
export class CaptureSessions extends EventEmitter<{ changed: [CaptureStatus] }> {
  readonly #store: SampleStore
  readonly #now: () => number
  readonly #sessions = new Map<number, Session>()
  readonly #onEnded: ((status: CaptureStatus) => void) | undefined

  /** `onEnded` hears of each session when its time is up (e.g. to log what it stored). */
  constructor (store: SampleStore, onEnded?: (status: CaptureStatus) => void, now: () => number = Date.now) {
    super()
    this.#store = store
    this.#onEnded = onEnded
    this.#now = now
  }

  /**
   * Opens a session for `device`.
   * @throws ConflictError (409) while that device's previous session is still open
   */
  start (device: number, angle: number, seconds: number, options: CaptureOptions = {}): CaptureStatus {
    const open = this.#sessions.get(device)
    if (open && this.#isOpen(open)) {
      throw new ConflictError(`device ${device} is already being captured at ${open.angle}° for ${secondsLeft(open, this.#now()).toFixed(1)} more seconds`)
    }
    if (open?.timer) clearTimeout(open.timer)
    const startedAt = this.#now()
    const session: Session = {
      device, angle, startedAt, endsAt: startedAt + seconds * 1000, framesStored: 0, framesWanted: options.frames, source: options.source, timer: undefined
    }
    // record() checks the clock itself; the timer only reports the end
    session.timer = setTimeout(() => this.#end(session), seconds * 1000).unref()
    this.#sessions.set(device, session)
    const status = this.#status(session)
    this.emit('changed', status)
    return status
  }

  /**
   * Ends the device's open session now; the frames it stored so far stay.
   * @returns its final status, or undefined when none was open
   */
  cancel (device: number): CaptureStatus | undefined {
    const session = this.#sessions.get(device)
    if (!session || !this.#isOpen(session)) return undefined
    session.endsAt = this.#now()
    this.#end(session)
    return this.#status(session)
  }

  /** The device's open session, or its last one; undefined if it never had one. */
  status (device: number): CaptureStatus | undefined {
    const session = this.#sessions.get(device)
    return session && this.#status(session)
  }

  /** Stores `frames` as samples when a session is open for `device`. @returns how many were stored */
  record (device: number, frames: readonly Float32Array[], source: SampleSource): number {
    const session = this.#sessions.get(device)
    if (!session || !this.#isOpen(session) || frames.length === 0) return 0
    const room = session.framesWanted === undefined ? frames.length : Math.min(frames.length, session.framesWanted - session.framesStored)
    const taken = room < frames.length ? frames.slice(0, room) : frames
    const stored = this.#store.insert(taken.map((features) => ({ kind: 'csi', angle: session.angle, features, device, source: session.source ?? source })))
    session.framesStored += stored
    if (session.framesWanted !== undefined && session.framesStored >= session.framesWanted) {
      session.endsAt = this.#now()
      this.#end(session)
    } else {
      const status = this.#status(session)
      // after the caller's transaction: a listener must never roll back stored frames
      queueMicrotask(() => this.emit('changed', status))
    }
    return stored
  }

  #end (session: Session): void {
    if (session.timer) clearTimeout(session.timer)
    session.timer = undefined
    const status = this.#status(session)
    queueMicrotask(() => {
      this.#onEnded?.(status)
      this.emit('changed', status)
    })
  }

  /** Stops every timer (app close). */
  close (): void {
    for (const session of this.#sessions.values()) {
      if (session.timer) clearTimeout(session.timer)
      session.timer = undefined
    }
  }

  #isOpen (session: Session): boolean {
    return this.#now() < session.endsAt
  }

  #status (session: Session): CaptureStatus {
    const now = this.#now()
    return {
      ID: session.device,
      angle: session.angle,
      active: now < session.endsAt,
      framesStored: session.framesStored,
      ...(session.framesWanted === undefined ? {} : { framesWanted: session.framesWanted }),
      secondsLeft: secondsLeft(session, now),
      startedAt: new Date(session.startedAt).toISOString(),
      endsAt: new Date(session.endsAt).toISOString()
    }
  }
}

function secondsLeft (session: Session, now: number): number {
  return Math.max(0, (session.endsAt - now) / 1000)
}
