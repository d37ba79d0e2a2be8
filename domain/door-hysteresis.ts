/**
 * The door-state hysteresis of the windowed engine: turns a device's stream
 * of window predictions (one per frame once its window is full) into a
 * reported door state that does not flicker, and into `needsRecalibration`
 * when the frames stop looking like the door's calibration.
 *
 * Rules, per familiar window (one whose novelty is below the model's
 * threshold):
 * - from `unknown`, a state is entered once `enter` consecutive familiar
 *   windows agree on it;
 * - a reported state is left for the other once `leave` consecutive familiar
 *   windows say the other; a flicker shorter than `leave` changes nothing;
 * - within `open`, the reported angle moves once `enter` consecutive familiar
 *   windows agree on another open angle (a closed door's angle is 0).
 *
 * Novelty: `novelAfter` (M) consecutive novel windows set
 * `needsRecalibration` and the state `unknown`; novel windows are no evidence
 * for any state (they neither count towards nor break a streak). Once
 * `familiarAfter` consecutive familiar windows arrive, `needsRecalibration`
 * clears; the state then re-enters by the `enter` rule (the familiar windows
 * that cleared it count).
 *
 * Latency: a window needs k frames, so the first state is reported with
 * frame k − 1 + enter of a fresh stream ({@link firstStateFrames}); at f
 * frames per second that is (k − 1 + enter) / f seconds after the first frame
 * ({@link firstStateSeconds}), e.g. k = 25, enter = 3 at 20 frames/s: 27
 * frames, 1.35 s. After the door moves, the state changes at the latest k − 1
 * + leave frames later (once the window holds only new frames and `leave`
 * such windows agree), usually earlier: a window's mean tips once most of it
 * holds new frames ({@link changeFrames}, {@link changeSeconds}).
 *
 * No clock and no I/O: every call takes the time it happens at (ms since the
 * epoch, or any monotonic count), so the same inputs always give the same
 * states.
 */
import type { DoorStateName } from './smoother.js'

export type { DoorStateName } from './smoother.js'

/** How much agreement a state change needs. All counts are consecutive windows, at least 1. */
export interface HysteresisOptions {
  /** Familiar windows agreeing on a state before it is entered from `unknown` (and before an open angle moves). */
  enter: number
  /** Familiar windows saying the other state before a reported state is left. */
  leave: number
  /** M: novel windows in a row that set needsRecalibration (and the state unknown). */
  novelAfter: number
  /** Familiar windows in a row that clear needsRecalibration. */
  familiarAfter: number
}

/**
 * The measured defaults (bench/door-model.bench.ts). novelAfter is two
 * windows of k 25: a door moving fills up to k + (frames of the swing)
 * windows with two positions, and that is not novelty (issue 19).
 */
export const DEFAULT_HYSTERESIS: Readonly<HysteresisOptions> = Object.freeze({ enter: 3, leave: 5, novelAfter: 50, familiarAfter: 10 })

/** What one window says; a window prediction of ml/door/predictor.ts fits as it is. */
export interface WindowObservation {
  state: 'open' | 'closed'
  /** The window's angle in degrees, consistent with `state` (0 when closed). */
  angle: number
  /** Probability that the door is closed. */
  closedProbability: number
  /** Whether the window lies beyond the model's novelty threshold. */
  novel: boolean
}

/** A door's reported state at one moment. Times are in the caller's unit. */
export interface HysteresisDoor {
  state: DoorStateName
  /** Degrees; null while unknown. */
  angle: number | null
  /** The latest familiar window's probability of the reported state (0 while unknown). */
  confidence: number
  /** Recent windows look unlike the calibration (state is unknown meanwhile). */
  needsRecalibration: boolean
  /** When state, angle or needsRecalibration last changed (or the stream started). */
  since: number
  /** When the last window arrived; null before any. */
  lastWindowAt: number | null
}

/** Frames a fresh stream needs before its first reported state: k − 1 + enter (a window needs k frames). */
export function firstStateFrames (window: number, options: Pick<HysteresisOptions, 'enter'>): number {
  return window - 1 + options.enter
}

/** {@link firstStateFrames} in seconds at `frameRate` frames per second. */
export function firstStateSeconds (window: number, options: Pick<HysteresisOptions, 'enter'>, frameRate: number): number {
  return firstStateFrames(window, options) / frameRate
}

/** Worst-case frames from a door's move to the reported change: k − 1 + leave. */
export function changeFrames (window: number, options: Pick<HysteresisOptions, 'leave'>): number {
  return window - 1 + options.leave
}

/** {@link changeFrames} in seconds at `frameRate` frames per second. */
export function changeSeconds (window: number, options: Pick<HysteresisOptions, 'leave'>, frameRate: number): number {
  return changeFrames(window, options) / frameRate
}

/** Checks the counts. @throws RangeError naming the bad one */
export function checkHysteresis (options: HysteresisOptions): Readonly<HysteresisOptions> {
  for (const key of ['enter', 'leave', 'novelAfter', 'familiarAfter'] as const) {
    const value = options[key]
    if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new RangeError(`hysteresis ${key} must be an integer in 1..10000, got ${value}`)
  }
  return Object.freeze({ enter: options.enter, leave: options.leave, novelAfter: options.novelAfter, familiarAfter: options.familiarAfter })
}

/** One device's hysteresis. Feed it that device's window predictions in order. */
export class DoorHysteresis {
  readonly options: Readonly<HysteresisOptions>
  private state: DoorStateName = 'unknown'
  private angle: number | null = null
  private confidence = 0
  private needsRecalibration = false
  private since: number
  private lastWindowAt: number | null = null
  /** Consecutive familiar windows saying one state (other than the reported one, or any while unknown). */
  private stateRun = 0
  private stateRunValue: 'open' | 'closed' | undefined
  /** Consecutive familiar windows saying one open angle other than the reported one. */
  private angleRun = 0
  private angleRunValue: number | undefined
  private novelRun = 0
  private familiarRun = 0

  constructor (options: HysteresisOptions = DEFAULT_HYSTERESIS, startedAt = 0) {
    this.options = checkHysteresis(options)
    this.since = startedAt
  }

  /** The reported state now (a fresh object). */
  get door (): HysteresisDoor {
    return {
      state: this.state,
      angle: this.angle,
      confidence: this.confidence,
      needsRecalibration: this.needsRecalibration,
      since: this.since,
      lastWindowAt: this.lastWindowAt
    }
  }

  /**
   * Adds one window's prediction.
   * @returns whether the reported state, angle or needsRecalibration changed
   */
  push (observation: WindowObservation, at: number): boolean {
    this.lastWindowAt = at
    const o = this.options
    if (observation.novel) {
      this.familiarRun = 0
      this.novelRun++
      if (this.novelRun >= o.novelAfter && !this.needsRecalibration) {
        this.needsRecalibration = true
        this.toUnknown(at)
        return true
      }
      return false
    }
    this.novelRun = 0
    this.familiarRun++
    const closedProbability = observation.closedProbability
    let changed = false
    if (this.needsRecalibration) {
      // familiar windows still gather evidence for the state that follows
      this.see(observation.state)
      if (this.familiarRun < o.familiarAfter) return false
      this.needsRecalibration = false
      this.since = at
      changed = true
    } else {
      this.see(observation.state)
    }

    if (this.state === 'unknown') {
      if (this.stateRun >= o.enter) {
        this.enterState(observation, at)
        changed = true
      }
    } else if (observation.state !== this.state) {
      this.angleRun = 0
      if (this.stateRun >= o.leave) {
        this.enterState(observation, at)
        changed = true
      }
    } else if (this.state === 'open' && observation.angle !== this.angle) {
      if (observation.angle === this.angleRunValue) this.angleRun++
      else {
        this.angleRunValue = observation.angle
        this.angleRun = 1
      }
      if (this.angleRun >= o.enter) {
        this.angle = observation.angle
        this.angleRun = 0
        this.angleRunValue = undefined
        this.since = at
        changed = true
      }
    } else {
      this.angleRun = 0
      this.angleRunValue = undefined
    }
    if (this.state !== 'unknown') this.confidence = this.state === 'closed' ? closedProbability : 1 - closedProbability
    return changed
  }

  /**
   * Marks the door unknown when no window arrived for `staleAfter` (same unit
   * as the times) and forgets every streak (needsRecalibration stays: only
   * familiar frames clear it).
   * @returns whether the reported state changed (to unknown)
   */
  expire (now: number, staleAfter: number): boolean {
    if (this.lastWindowAt === null || now - this.lastWindowAt < staleAfter) return false
    this.stateRun = 0
    this.stateRunValue = undefined
    this.novelRun = 0
    this.familiarRun = 0
    if (this.state === 'unknown') return false
    this.toUnknown(now)
    return true
  }

  /** Counts a familiar window's state: one more if it continues the streak, else a streak of 1. */
  private see (state: 'open' | 'closed'): void {
    if (this.state !== 'unknown' && state === this.state) {
      // agreeing with the reported state: no streak towards a change
      this.stateRun = 0
      this.stateRunValue = undefined
      return
    }
    if (state === this.stateRunValue) this.stateRun++
    else {
      this.stateRunValue = state
      this.stateRun = 1
    }
  }

  private enterState (observation: WindowObservation, at: number): void {
    this.state = observation.state
    this.angle = observation.state === 'closed' ? 0 : observation.angle
    this.since = at
    this.stateRun = 0
    this.stateRunValue = undefined
    this.angleRun = 0
    this.angleRunValue = undefined
  }

  private toUnknown (at: number): void {
    this.state = 'unknown'
    this.angle = null
    this.confidence = 0
    this.since = at
    this.stateRun = 0
    this.stateRunValue = undefined
    this.angleRun = 0
    this.angleRunValue = undefined
  }
}

/**
 * The novelty rules of {@link DoorHysteresis} on their own, for a door read
 * by a model without hysteresis of its own (the global per-frame model):
 * its answer is trusted once `enter` familiar windows in a row arrived (novel
 * windows are no evidence, as for a door model's states); `novelAfter` novel
 * windows in a row raise the flag (and end the trust), `familiarAfter`
 * familiar ones in a row clear it.
 */
export class NoveltyGate {
  readonly options: Readonly<Pick<HysteresisOptions, 'enter' | 'novelAfter' | 'familiarAfter'>>
  #novelRun = 0
  #familiarRun = 0
  #flagged = false
  #trusted = false

  constructor (options: Pick<HysteresisOptions, 'enter' | 'novelAfter' | 'familiarAfter'> = DEFAULT_HYSTERESIS) {
    checkHysteresis({ leave: 1, ...options })
    this.options = Object.freeze({ enter: options.enter, novelAfter: options.novelAfter, familiarAfter: options.familiarAfter })
  }

  /** Whether recent windows are unlike the model's (until familiar ones clear it). */
  get flagged (): boolean {
    return this.#flagged
  }

  /** Whether the model's answer may be shown: enough familiar windows, and not flagged. */
  get trusted (): boolean {
    return this.#trusted
  }

  /** Adds one window's verdict. @returns whether `flagged` or `trusted` changed */
  push (novel: boolean): boolean {
    const before = `${this.#flagged}${this.#trusted}`
    if (novel) {
      this.#familiarRun = 0
      if (++this.#novelRun >= this.options.novelAfter) {
        this.#flagged = true
        this.#trusted = false
      }
    } else {
      this.#novelRun = 0
      this.#familiarRun++
      if (this.#flagged && this.#familiarRun >= this.options.familiarAfter) this.#flagged = false
      if (!this.#flagged && this.#familiarRun >= this.options.enter) this.#trusted = true
    }
    return `${this.#flagged}${this.#trusted}` !== before
  }

  /** Forgets the runs and the trust (after silence: a new stream earns it again); the flag stays until familiar windows clear it. */
  resetRuns (): void {
    this.#novelRun = 0
    this.#familiarRun = 0
    this.#trusted = false
  }
}
