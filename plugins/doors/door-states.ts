/**
 * The live state of every door. A door with a model of its own runs the
 * windowed pipeline (ml/door/: the last k frames → window features →
 * two heads + novelty → hysteresis); a door without one falls back to the
 * global per-frame model's answers through the vote smoother
 * (domain/smoother.ts). A `change` event fires when a door's reported state,
 * angle or recalibration flag moves; a timer marks silent devices unknown.
 * Knows nothing of HTTP.
 */
import { EventEmitter } from 'node:events'
import { NoveltyGate } from '../../domain/door-hysteresis.js'
import { DoorSmoother, type SmootherOptions } from '../../domain/smoother.js'
import { DoorPipeline } from '../../ml/door/pipeline.js'
import type { ActiveDoorModel } from '../../ml/door-models.js'
import type { NoveltyStream, WindowNoveltyModel } from '../../ml/novelty.js'
import type { Prediction } from '../../schemas/model.js'
import type { DoorState } from '../../schemas/inference.js'

/** Settings of the door-state service (config.DOOR_WINDOW, DOOR_HOLD, STALE_AFTER_S). */
export interface DoorStatesOptions extends SmootherOptions {
  /** Seconds of silence after which a door goes `unknown`. */
  staleAfterS: number
  /** Most windows of a door's frames the global model's novelty scans a second (DOOR_NOVELTY_MAX_SCANS); 0 or absent = no bound. */
  noveltyScansPerSecond?: number
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number
}

/** Which model last answered for a door. */
export interface DoorModelRef {
  version: string
  scope: 'door' | 'global'
}

/** Everything the service knows of one door now. */
export interface DoorSnapshot extends DoorState {
  frameRate: number
  needsRecalibration: boolean
  model: DoorModelRef | null
  /** Which model finds the door's recent frames unlike what it learned (the state is unknown meanwhile), if one does. */
  unfamiliarTo: 'door' | 'global' | null
  /** Open angles the door's own model cannot tell from closed: its closed reads `closedOrAjar`. */
  closedOrAjar: number[]
}

/** A global model's window novelty, as the model handler hands it out. */
export interface GlobalNovelty {
  version: string
  model: WindowNoveltyModel
}

/**
 * The most a `closedOrAjar` state claims: the door cannot tell which of
 * the two it is, so at best even odds that it is shut.
 */
export const CLOSED_OR_AJAR_CONFIDENCE = 0.5

/** Seconds over which the frame rate is counted. */
const RATE_SECONDS = 5

/** Frames per second over the last few whole seconds: a ring of per-second counts. */
class FrameRate {
  readonly #counts = new Float64Array(RATE_SECONDS + 1)
  #second = 0

  add (frames: number, at: number): void {
    this.#advance(at)
    this.#counts[this.#second % this.#counts.length] += frames
  }

  rate (now: number): number {
    this.#advance(now)
    let sum = 0
    // the current second is still filling: count the whole ones before it
    for (let back = 1; back <= RATE_SECONDS; back++) sum += this.#counts[(this.#second - back + this.#counts.length * 2) % this.#counts.length]
    return sum / RATE_SECONDS
  }

  #advance (at: number): void {
    const second = Math.floor(at / 1000)
    if (second <= this.#second) return
    const steps = Math.min(second - this.#second, this.#counts.length)
    for (let i = 1; i <= steps; i++) this.#counts[(this.#second + i) % this.#counts.length] = 0
    this.#second = second
  }
}

/** What a user sees of a door: a change event fires when one of these moves. */
interface ReportedFields { state: string, angle: number | null, needsRecalibration: boolean }

/** Whether two reports show a user the same door (state, angle, recalibration flag). */
function sameReport (a: ReportedFields, b: ReportedFields): boolean {
  return a.state === b.state && a.angle === b.angle && a.needsRecalibration === b.needsRecalibration
}

interface Door {
  device: number
  smoother: DoorSmoother
  /** The windowed pipeline of the door's own model (rebuilt when that model changes). */
  pipeline: DoorPipeline | undefined
  model: DoorModelRef | null
  /** Open angles the door's own model reads as closed (its calibration accepted ajar as closed). */
  closedOrAjar: number[]
  /** Without a model of its own: the global model's window novelty over this door's frames. */
  novelty: { version: string, stream: NoveltyStream, gate: NoveltyGate } | undefined
  rate: FrameRate
  lastFrameAt: number | null
  /** What was last reported (a change event fires when it moves). */
  reported: ReportedFields
}

/**
 * `change` events carry the door's new {@link DoorSnapshot}. Call start() to
 * run the staleness timer and stop() to end it.
 */
export class DoorStates extends EventEmitter<{ change: [DoorSnapshot] }> {
  private readonly doors = new Map<number, Door>()
  /** Doors with frames not yet gone stale: the only ones the staleness check visits (idle doors cost nothing). */
  private readonly ticking = new Set<Door>()
  /** When each door's last frames came, while its frame rate can still move (see {@link recentlyFramed}). */
  private readonly framedAt = new Map<number, number>()
  /**
   * Doors shown as another instance of a cluster reported them (plugins/cluster):
   * owned elsewhere, or owned here and still rebuilding their window from the
   * stream (`released`: owned here, no frame of its own yet). Frames still move
   * a held door's local state, silently, so its release shows where it stands.
   */
  private readonly held = new Map<number, { snapshot: DoorSnapshot, released: boolean }>()
  private readonly options: Readonly<DoorStatesOptions>
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined

  constructor (options: DoorStatesOptions) {
    super()
    if (!(options.staleAfterS > 0)) throw new RangeError(`staleAfterS must be > 0, got ${options.staleAfterS}`)
    // validates window and hold once, before any device shows up
    new DoorSmoother(options) // eslint-disable-line no-new
    this.options = Object.freeze({ ...options })
    this.now = options.now ?? Date.now
  }

  /** Doors seen so far. */
  get size (): number {
    return this.doors.size
  }

  /**
   * Feeds one device's per-frame predictions of the global model (in
   * arrival order; probabilities in the order of `labels`) to its smoother.
   * Ignored for a door that has a model of its own.
   * @returns how many times its reported state or angle changed
   */
  observe (device: number, predictions: readonly Prediction[], labels: readonly number[], at = this.now(), version?: string): number {
    const door = this.#door(device, at)
    if (door.pipeline) return 0
    if (version !== undefined) door.model = { version, scope: 'global' }
    // the answers come a moment after the frames: the door was last heard from no earlier than its state changed
    if (predictions.length > 0) {
      door.lastFrameAt = Math.max(door.lastFrameAt ?? at, at)
      this.ticking.add(door)
    }
    let changes = 0
    for (let i = 0; i < predictions.length; i++) {
      if (door.smoother.push(predictions[i].probabilities, labels, at) && this.#report(door)) changes++
    }
    return changes
  }

  /**
   * Runs a door's frames (106 values each, arrival order) through its own
   * model's windowed pipeline: one predict call for all the windows they complete.
   * @returns how many times its reported state, angle or recalibration flag changed
   */
  observeWindows (device: number, frames: readonly Float32Array[], model: ActiveDoorModel, at = this.now()): number {
    const door = this.#door(device, at)
    if (door.model?.version !== model.version || !door.pipeline) {
      // another model reads other windows: start its window afresh
      door.pipeline = new DoorPipeline(model.predictor.meta, at)
      door.model = { version: model.version, scope: 'door' }
      door.closedOrAjar = model.closedOrAjar
      door.novelty = undefined
    }
    const pipeline = door.pipeline
    const windows: Float32Array[] = []
    for (const frame of frames) {
      const features = pipeline.push(frame, at)
      if (features) windows.push(features)
    }
    if (windows.length === 0) return 0
    let changes = 0
    for (const prediction of model.predictor.predict(windows)) {
      if (pipeline.observe(prediction, at) && this.#report(door)) changes++
    }
    return changes
  }

  /**
   * The global model's answers to frames of a door without a model of its
   * own, with the frames they answer (arrival order). Frame by frame, the
   * window the frame completes goes through the global model's window
   * novelty ({@link observeNovelty}), then the frame's answer through the
   * vote smoother ({@link observe}): the order in which frames sent one at a
   * time move the door, so a batch moves it through the same states, and
   * announces the same changes, as its frames one by one. Ignored for a door
   * with its own model.
   * @param novelty the active global model's, or undefined (none, or a model that carries none)
   * @returns how many times its reported state, angle or recalibration flag changed
   * @throws RangeError when there is not one answer per frame
   */
  observeGlobal (
    device: number,
    frames: readonly Float32Array[],
    predictions: readonly Prediction[],
    labels: readonly number[],
    novelty: GlobalNovelty | undefined,
    at = this.now(),
    version?: string
  ): number {
    if (predictions.length !== frames.length) throw new RangeError(`${predictions.length} answers for ${frames.length} frames`)
    const door = this.#door(device, at)
    if (door.pipeline) return 0
    let changes = 0
    if (!novelty) {
      if (door.novelty) {
        door.novelty = undefined
        if (this.#report(door)) changes++
      }
    } else if (door.novelty?.version !== novelty.version) {
      door.novelty = this.#watch(novelty)
    }
    if (version !== undefined) door.model = { version, scope: 'global' }
    // the answers come a moment after the frames: the door was last heard from no earlier than its state changed
    if (predictions.length > 0) {
      door.lastFrameAt = Math.max(door.lastFrameAt ?? at, at)
      this.ticking.add(door)
    }
    const watched = door.novelty
    // a score per window the frames complete: every frame once the window holds k − 1 frames, none before
    const scores = watched ? watched.stream.push(frames, at) : new Float64Array(0)
    const unscored = frames.length - scores.length
    for (let i = 0; i < frames.length; i++) {
      if (watched && i >= unscored && watched.gate.push(scores[i - unscored] > 1) && this.#report(door)) changes++
      if (door.smoother.push(predictions[i].probabilities, labels, at) && this.#report(door)) changes++
    }
    return changes
  }

  /**
   * Runs the frames of a door without a model of its own through the global
   * model's window novelty (k frames per window, as a door model's): once
   * `novelAfter` windows in a row are unlike what the global model learned,
   * the door reports unknown (another room: calibrate it); `familiarAfter`
   * familiar ones clear it. Ignored for a door with its own model.
   * @param novelty the active global model's, or undefined (none, or a model that carries none)
   * @returns how many times its reported state changed
   */
  observeNovelty (device: number, frames: readonly Float32Array[], novelty: GlobalNovelty | undefined, at = this.now()): number {
    const door = this.#door(device, at)
    if (door.pipeline) return 0
    if (!novelty) {
      if (!door.novelty) return 0
      door.novelty = undefined
      return this.#report(door) ? 1 : 0
    }
    if (door.novelty?.version !== novelty.version) door.novelty = this.#watch(novelty)
    const { stream, gate } = door.novelty
    let changes = 0
    for (const score of stream.push(frames, at)) {
      if (gate.push(score > 1) && this.#report(door)) changes++
    }
    return changes
  }

  /** A fresh watch of a door's frames by the global model's novelty. */
  #watch (novelty: GlobalNovelty): NonNullable<Door['novelty']> {
    return { version: novelty.version, stream: novelty.model.stream(undefined, this.options.noveltyScansPerSecond), gate: new NoveltyGate() }
  }

  /** Counts a device's frames (rate, last frame), whichever model (if any) reads them. */
  noteFrames (device: number, frames: number, at = this.now()): void {
    const door = this.#door(device, at)
    door.rate.add(frames, at)
    door.lastFrameAt = at
    this.ticking.add(door)
    this.framedAt.set(device, at)
  }

  /**
   * The doors whose frame rate or last frame may have moved since `now` −
   * the rate's span: the ones that sent frames in the last few seconds, each
   * once more after its rate has fallen to 0. Walks only those.
   */
  recentlyFramed (now = this.now()): number[] {
    const devices: number[] = []
    for (const [device, at] of this.framedAt) {
      devices.push(device)
      if (now - at > (RATE_SECONDS + 1) * 1000) this.framedAt.delete(device)
    }
    return devices
  }

  /** The door's own model is gone: back to the global model, from a fresh start. */
  forgetModel (device: number): void {
    const door = this.doors.get(device)
    if (!door?.pipeline) return
    door.pipeline = undefined
    door.model = null
    door.closedOrAjar = []
    door.smoother = new DoorSmoother(this.options, this.now())
    this.#report(door)
  }

  /** One door's state, or undefined for a device never seen. */
  get (device: number): DoorSnapshot | undefined {
    const held = this.held.get(device)
    if (held) return held.snapshot
    const door = this.doors.get(device)
    return door && this.#snapshot(door)
  }

  /** Every door, by device ID. */
  list (): DoorSnapshot[] {
    const devices = new Set([...this.doors.keys(), ...this.held.keys()])
    return [...devices].sort((a, b) => a - b).map((device) => this.get(device) as DoorSnapshot)
  }

  /**
   * Shows `snapshot` for its door instead of what this process computes (a
   * cluster's door owned by another instance, or ours while its window is
   * rebuilt). Emits `change` when what a user sees moved.
   */
  hold (snapshot: DoorSnapshot): void {
    const before = this.get(snapshot.device)
    this.held.set(snapshot.device, { snapshot, released: false })
    if (!before || !sameReport(before, snapshot)) this.emit('change', snapshot)
  }

  /** Whether a door is shown as held (see {@link hold}). */
  isHeld (device: number): boolean {
    return this.held.get(device)?.released === false
  }

  /**
   * Shows what this process computes for a held door again (this instance
   * owns it now, its window rebuilt): `change` only when that differs from
   * what was held, so a handover does not flap. A door with no frames here
   * yet stays as held until its first change of its own, or until it goes
   * stale (then unknown).
   */
  release (device: number): void {
    const held = this.held.get(device)
    if (!held) return
    const door = this.doors.get(device)
    if (!door || door.lastFrameAt === null) {
      held.released = true
      return
    }
    this.held.delete(device)
    const now = this.#snapshot(door)
    door.reported = { state: now.state, angle: now.angle, needsRecalibration: now.needsRecalibration }
    if (!sameReport(held.snapshot, now)) this.emit('change', now)
  }

  /**
   * Marks every door silent for staleAfterS unknown (emitting `change`).
   * @returns how many doors went unknown
   */
  expireStale (now = this.now()): number {
    let expired = 0
    const staleMs = this.options.staleAfterS * 1000
    // a door handed over without frames since: its old owner's last word, until it too is stale
    for (const held of this.held.values()) {
      const { snapshot } = held
      const last = snapshot.lastFrameAt === null ? null : Date.parse(snapshot.lastFrameAt)
      if (!held.released || snapshot.state === 'unknown' || (last !== null && now - last < staleMs)) continue
      held.snapshot = { ...snapshot, state: 'unknown', angle: null, confidence: 0, since: new Date(now).toISOString(), frameRate: 0 }
      this.emit('change', held.snapshot)
      expired++
    }
    // only doors with frames since they last went stale: a door silent for longer has nothing left to expire
    for (const door of this.ticking) {
      const moved = door.pipeline ? door.pipeline.expire(now, staleMs) : door.smoother.expire(now, staleMs)
      const stale = door.lastFrameAt !== null && now - door.lastFrameAt >= staleMs
      if (door.novelty && stale) {
        // old frames must not mix with new ones; the flag stays until familiar frames clear it
        door.novelty.stream.reset()
        door.novelty.gate.resetRuns()
      }
      if (stale) this.ticking.delete(door)
      if (moved && this.#report(door)) expired++
    }
    return expired
  }

  /**
   * Starts the staleness check: a door goes unknown between 1 and 1.25 ×
   * staleAfterS after its last frame. The timer is unref'd (it never keeps the
   * process alive).
   */
  start (): void {
    if (this.timer) return
    const periodMs = Math.min(Math.max(this.options.staleAfterS * 250, 10), 5000)
    this.timer = setInterval(() => this.expireStale(), periodMs)
    this.timer.unref()
  }

  /** Stops the staleness timer and drops the listeners. */
  stop (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.removeAllListeners()
  }

  #door (device: number, at: number): Door {
    let door = this.doors.get(device)
    if (!door) {
      door = {
        device,
        smoother: new DoorSmoother(this.options, at),
        pipeline: undefined,
        model: null,
        closedOrAjar: [],
        novelty: undefined,
        rate: new FrameRate(),
        lastFrameAt: null,
        reported: { state: 'unknown', angle: null, needsRecalibration: false }
      }
      this.doors.set(device, door)
    }
    return door
  }

  /** Emits `change` when what a user sees moved. @returns whether it did */
  #report (door: Door): boolean {
    const now = this.#snapshot(door)
    const held = this.held.get(door.device)
    const before = held?.released === true ? held.snapshot : door.reported
    door.reported = { state: now.state, angle: now.angle, needsRecalibration: now.needsRecalibration }
    // held for another instance (or a window being rebuilt): moves silently, shown on release
    if (held?.released === false) return false
    // handed over without frames of its own until now: from here on what this process computes
    if (held) this.held.delete(door.device)
    if (sameReport(before, now)) return false
    this.emit('change', now)
    return true
  }

  #snapshot (door: Door): DoorSnapshot {
    const lastFrameAt = door.lastFrameAt ?? (door.pipeline ? null : door.smoother.door.lastFrameAt)
    const snapshot: DoorSnapshot = {
      device: door.device,
      angle: null,
      state: 'unknown',
      confidence: 0,
      since: '',
      lastFrameAt: lastFrameAt === null ? null : new Date(lastFrameAt).toISOString(),
      frameRate: door.rate.rate(this.now()),
      needsRecalibration: false,
      model: door.model,
      unfamiliarTo: null,
      closedOrAjar: door.closedOrAjar
    }
    if (door.pipeline) {
      const reading = door.pipeline.door
      const limited = door.closedOrAjar.length > 0
      snapshot.since = new Date(reading.since).toISOString()
      snapshot.unfamiliarTo = reading.needsRecalibration ? 'door' : null
      snapshot.needsRecalibration = reading.needsRecalibration
      if (limited && reading.state === 'closed') {
        return { ...snapshot, state: 'closedOrAjar', angle: reading.angle, confidence: Math.min(reading.confidence, CLOSED_OR_AJAR_CONFIDENCE) }
      }
      return { ...snapshot, state: reading.state, angle: reading.angle, confidence: reading.confidence }
    }
    const reading = door.smoother.door
    if (door.novelty?.gate.flagged) {
      // the global model has not seen frames like these: its answer would be a confident guess
      return { ...snapshot, since: new Date(reading.since).toISOString(), needsRecalibration: true, unfamiliarTo: 'global' }
    }
    // its answer counts once windows of these frames look like what it learned
    if (door.novelty && !door.novelty.gate.trusted) return { ...snapshot, since: new Date(reading.since).toISOString() }
    return { ...snapshot, state: reading.state, angle: reading.angle, confidence: reading.confidence, since: new Date(reading.since).toISOString() }
  }
}
