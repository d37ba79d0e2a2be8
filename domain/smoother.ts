/**
 * The door-state smoother: turns a device's stream of per-frame class
 * probabilities into a door state that does not flicker. The server runs one
 * per device (plugins/inference) and the eval CLI streams each label's test
 * tail through the same code to report `smoothedAccuracy`.
 *
 * Two stages:
 * 1. a moving average of the last `window` probability vectors; its argmax is
 *    the candidate angle, and the candidate state follows from that angle
 *    (closed = the 0° class, as for a single frame);
 * 2. hysteresis: the reported state changes only after the candidate state
 *    has differed from it for `hold` consecutive frames, and the reported
 *    angle (within a state) only after one other candidate angle has held for
 *    `hold` consecutive frames.
 *
 * No clock and no I/O: every call takes the time it happens at (ms since the
 * epoch, or any monotonic count), so the same inputs always give the same
 * states.
 */
import { doorStateOf } from './labels.js'

/** How much evidence the smoother weighs (DOOR_WINDOW and DOOR_HOLD in the server's config). */
export interface SmootherOptions {
  /** Predictions averaged, at least 1. */
  window: number
  /** Consecutive frames the smoothed evidence must hold before the reported state or angle changes, at least 1. */
  hold: number
}

/** The server's defaults (DOOR_WINDOW = 15, DOOR_HOLD = 5); the eval CLI uses them too. */
export const DEFAULT_SMOOTHER_OPTIONS: Readonly<SmootherOptions> = Object.freeze({ window: 15, hold: 5 })

/** What the smoother says about a door; `unknown` before enough evidence and after silence. */
export type DoorStateName = 'open' | 'closed' | 'unknown'

/** A door's reported state at one moment. Times are in the caller's unit (ms since the epoch in the server). */
export interface SmoothedDoor {
  /** The reported angle in degrees; null while the state is unknown. */
  angle: number | null
  state: DoorStateName
  /** Smoothed probability that the door is in the reported state (0 while unknown). */
  confidence: number
  /** When the state last changed (or the smoother started). */
  since: number
  /** When the last frame arrived; null before any. */
  lastFrameAt: number | null
}

/**
 * One door's smoother. Holds only that door's window; feed it each frame's
 * class probabilities in arrival order.
 */
export class DoorSmoother {
  readonly options: Readonly<SmootherOptions>
  private labels: readonly number[] = []
  private closedIndex = -1
  /** Ring buffer of `window` probability vectors, one row of labels.length values each. */
  private ring = new Float64Array(0)
  private sums = new Float64Array(0)
  private count = 0
  private head = 0
  private state: DoorStateName = 'unknown'
  private angle: number | null = null
  private confidence = 0
  private since: number
  private lastFrameAt: number | null = null
  /** A run of frames whose candidate state differs from the reported one. */
  private readonly stateStreak = new Streak<DoorStateName>()
  /** A run of frames whose candidate angle differs from the reported one (same state). */
  private readonly angleStreak = new Streak<number>()

  constructor (options: SmootherOptions = DEFAULT_SMOOTHER_OPTIONS, startedAt = 0) {
    if (!Number.isInteger(options.window) || options.window < 1) throw new RangeError(`smoother window must be an integer >= 1, got ${options.window}`)
    if (!Number.isInteger(options.hold) || options.hold < 1) throw new RangeError(`smoother hold must be an integer >= 1, got ${options.hold}`)
    this.options = Object.freeze({ window: options.window, hold: options.hold })
    this.since = startedAt
  }

  /** The reported state now (a fresh object). */
  get door (): SmoothedDoor {
    return { angle: this.angle, state: this.state, confidence: this.confidence, since: this.since, lastFrameAt: this.lastFrameAt }
  }

  /**
   * Adds one frame's class probabilities (in the order of `labels`, the
   * model's class angles). A change of label set (a new model with other
   * classes) restarts the window; the reported state stays until new
   * evidence moves it.
   * @returns whether the reported state or angle changed
   */
  push (probabilities: ArrayLike<number>, labels: readonly number[], at: number): boolean {
    if (probabilities.length !== labels.length) throw new RangeError(`expected ${labels.length} probabilities (one per label), got ${probabilities.length}`)
    if (!sameLabels(labels, this.labels)) this.restart(labels)
    this.lastFrameAt = at
    this.addToWindow(probabilities)

    // candidate: argmax of the summed window (dividing by the count changes nothing)
    const sums = this.sums
    let best = 0
    let total = sums[0]
    for (let i = 1; i < sums.length; i++) {
      total += sums[i]
      if (sums[i] > sums[best]) best = i
    }
    const candidateAngle = this.labels[best]
    const candidateState = doorStateOf(candidateAngle)
    const closedShare = this.closedIndex >= 0 && total > 0 ? sums[this.closedIndex] / total : 0

    let changed = false
    if (candidateState !== this.state) {
      this.angleStreak.reset()
      if (this.stateStreak.see(candidateState) >= this.options.hold) {
        this.state = candidateState
        this.angle = candidateAngle
        this.since = at
        this.stateStreak.reset()
        changed = true
      }
    } else {
      this.stateStreak.reset()
      if (candidateAngle === this.angle) this.angleStreak.reset()
      else if (this.angleStreak.see(candidateAngle) >= this.options.hold) {
        this.angle = candidateAngle
        this.angleStreak.reset()
        changed = true
      }
    }
    this.confidence = this.state === 'closed' ? closedShare : this.state === 'open' ? 1 - closedShare : 0
    return changed
  }

  /**
   * Marks the door unknown when no frame arrived for `staleAfter` (same unit
   * as the times) and forgets the window, so old evidence never mixes with
   * new.
   * @returns whether the reported state changed (to unknown)
   */
  expire (now: number, staleAfter: number): boolean {
    if (this.lastFrameAt === null || now - this.lastFrameAt < staleAfter) return false
    if (this.count > 0) this.clearWindow()
    if (this.state === 'unknown') return false
    this.state = 'unknown'
    this.angle = null
    this.confidence = 0
    this.since = now
    return true
  }

  private restart (labels: readonly number[]): void {
    this.labels = labels.slice()
    this.closedIndex = labels.indexOf(0)
    this.ring = new Float64Array(this.options.window * labels.length)
    this.sums = new Float64Array(labels.length)
    this.clearWindow()
  }

  private clearWindow (): void {
    this.ring.fill(0)
    this.sums.fill(0)
    this.count = 0
    this.head = 0
    this.stateStreak.reset()
    this.angleStreak.reset()
  }

  private addToWindow (probabilities: ArrayLike<number>): void {
    const width = this.sums.length
    const offset = this.head * width
    const full = this.count === this.options.window
    for (let i = 0; i < width; i++) {
      const value = probabilities[i]
      if (full) this.sums[i] -= this.ring[offset + i]
      this.ring[offset + i] = value
      this.sums[i] += value
    }
    if (!full) this.count++
    this.head = (this.head + 1) % this.options.window
    // re-add the window once per lap so float round-off from the running sum never accumulates
    if (this.head === 0 && full) this.resum()
  }

  private resum (): void {
    const width = this.sums.length
    this.sums.fill(0)
    for (let row = 0; row < this.count; row++) {
      for (let i = 0; i < width; i++) this.sums[i] += this.ring[row * width + i]
    }
  }
}

/** Consecutive frames with one same candidate value. */
class Streak<T> {
  private value: T | undefined
  private length = 0

  /** Counts `value`: one more if it continues the streak, else a new streak of 1. @returns the streak's length */
  see (value: T): number {
    if (value === this.value) this.length++
    else {
      this.value = value
      this.length = 1
    }
    return this.length
  }

  reset (): void {
    this.value = undefined
    this.length = 0
  }
}

function sameLabels (a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** One label's frames in recording order: the true angle and each frame's class probabilities. */
export interface LabelledSequence {
  angle: number
  probabilities: ReadonlyArray<ArrayLike<number>>
}

/** How the smoothed states scored against the true labels. */
export interface SmoothedScore {
  /** Share of frames whose reported angle equals the true angle (frames still `unknown` count as wrong). */
  accuracy: number
  /** Share of frames whose reported open/closed state is right (`unknown` counts as wrong). */
  openClosedAccuracy: number
  frames: number
  /** Frames at which the smoother had not decided yet (the first hold − 1 of each sequence). */
  undecided: number
}

/**
 * Groups rows by their true angle, keeping each label's rows in their
 * original order (e.g. the blocked test tail of each label).
 */
export function sequencesByLabel (angles: readonly number[], probabilities: ReadonlyArray<ArrayLike<number>>): LabelledSequence[] {
  if (angles.length !== probabilities.length) throw new RangeError(`got ${angles.length} angles but ${probabilities.length} probability rows`)
  const byAngle = new Map<number, Array<ArrayLike<number>>>()
  for (let i = 0; i < angles.length; i++) {
    let rows = byAngle.get(angles[i])
    if (!rows) byAngle.set(angles[i], rows = [])
    rows.push(probabilities[i])
  }
  return [...byAngle].map(([angle, rows]) => ({ angle, probabilities: rows }))
}

/**
 * Streams each sequence, in order, through a fresh {@link DoorSmoother}
 * (each label's tail is its own stretch of recording) and scores the
 * reported state at every frame against the true label.
 */
export function scoreSmoothed (
  sequences: readonly LabelledSequence[],
  labels: readonly number[],
  options: SmootherOptions = DEFAULT_SMOOTHER_OPTIONS
): SmoothedScore {
  let frames = 0
  let correct = 0
  let openClosedCorrect = 0
  let undecided = 0
  for (const sequence of sequences) {
    const smoother = new DoorSmoother(options)
    const trueState = doorStateOf(sequence.angle)
    sequence.probabilities.forEach((probabilities, index) => {
      smoother.push(probabilities, labels, index)
      const door = smoother.door
      frames++
      if (door.state === 'unknown') undecided++
      if (door.angle === sequence.angle) correct++
      if (door.state === trueState) openClosedCorrect++
    })
  }
  return {
    accuracy: frames ? correct / frames : 0,
    openClosedAccuracy: frames ? openClosedCorrect / frames : 0,
    frames,
    undecided
  }
}

/**
 * The eval CLI's `smoothedAccuracy`: 7-class accuracy of the smoothed angle
 * when each label's test tail is streamed in order through the server's
 * smoother. Pass the test rows' true angles and predicted probabilities (in
 * the order of `labels`, rows in file order).
 */
export function smoothedAccuracy (
  angles: readonly number[],
  probabilities: ReadonlyArray<ArrayLike<number>>,
  labels: readonly number[],
  options: SmootherOptions = DEFAULT_SMOOTHER_OPTIONS
): number {
  return scoreSmoothed(sequencesByLabel(angles, probabilities), labels, options).accuracy
}
