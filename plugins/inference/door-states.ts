/**
 * The live state of every door: one smoother (domain/smoother.ts) per device
 * over that device's predictions, a `change` event when a door's reported
 * state or angle moves, and a timer that marks silent devices unknown.
 * Knows nothing of HTTP.
 */
import { EventEmitter } from 'node:events'
import { DoorSmoother, type SmootherOptions } from '../../domain/smoother.js'
import type { Prediction } from '../../schemas/model.js'
import type { DoorState } from '../../schemas/inference.js'

/** Settings of the door-state service (config.DOOR_WINDOW, DOOR_HOLD, STALE_AFTER_S). */
export interface DoorStatesOptions extends SmootherOptions {
  /** Seconds of silence after which a door goes `unknown`. */
  staleAfterS: number
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number
}

interface Door {
  device: number
  smoother: DoorSmoother
}

/**
 * `change` events carry the door's new {@link DoorState}. Call start() to
 * run the staleness timer and stop() to end it.
 */
export class DoorStates extends EventEmitter<{ change: [DoorState] }> {
  private readonly doors = new Map<number, Door>()
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
   * Feeds one device's predictions (in arrival order; probabilities in the
   * order of `labels`) to its smoother.
   * @returns how many times its reported state or angle changed
   */
  observe (device: number, predictions: readonly Prediction[], labels: readonly number[], at = this.now()): number {
    let door = this.doors.get(device)
    if (!door) {
      door = { device, smoother: new DoorSmoother(this.options, at) }
      this.doors.set(device, door)
    }
    let changes = 0
    for (let i = 0; i < predictions.length; i++) {
      if (door.smoother.push(predictions[i].probabilities, labels, at)) {
        changes++
        this.emit('change', toDoorState(door))
      }
    }
    return changes
  }

  /** One door's state, or undefined for a device never seen. */
  get (device: number): DoorState | undefined {
    const door = this.doors.get(device)
    return door && toDoorState(door)
  }

  /** Every door, by device ID. */
  list (): DoorState[] {
    return [...this.doors.values()].sort((a, b) => a.device - b.device).map(toDoorState)
  }

  /**
   * Marks every door silent for staleAfterS unknown (emitting `change`).
   * @returns how many doors went unknown
   */
  expireStale (now = this.now()): number {
    let expired = 0
    for (const door of this.doors.values()) {
      if (door.smoother.expire(now, this.options.staleAfterS * 1000)) {
        expired++
        this.emit('change', toDoorState(door))
      }
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
}

function toDoorState (door: Door): DoorState {
  const { angle, state, confidence, since, lastFrameAt } = door.smoother.door
  return {
    device: door.device,
    angle,
    state,
    confidence,
    since: new Date(since).toISOString(),
    lastFrameAt: lastFrameAt === null ? null : new Date(lastFrameAt).toISOString()
  }
}
