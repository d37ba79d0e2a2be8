/**
 * What a server keeps per device for its door model: the device's window of
 * frame features (domain/door-window.ts) and its hysteresis
 * (domain/door-hysteresis.ts). The caller batches the ready windows of many
 * devices into one `DoorPredictor.predict` call (predictor.ts) and hands
 * each answer back to its own device's pipeline. No tensors, no I/O.
 */
import { DOOR_FRAME_WIDTH, doorFrameFeaturesInto, FrameWindow } from '../../domain/door-window.js'
import { checkHysteresis, DoorHysteresis, type HysteresisDoor, type WindowObservation } from '../../domain/door-hysteresis.js'
import type { DoorModelMeta } from './model-types.js'

/** What a pipeline needs of a model's meta. */
export type PipelineSettings = Pick<DoorModelMeta, 'window' | 'featureSet' | 'hysteresis'>

/**
 * The per-device engine a server keeps: the device's frame window and its
 * hysteresis. `push` turns a frame into window features once the window is
 * full; the caller predicts those (batched with other devices' windows) and
 * hands the answer back with `observe`, in the order the frames arrived. A
 * model with another k or feature set needs a fresh pipeline.
 */
export class DoorPipeline {
  readonly settings: Readonly<PipelineSettings>
  readonly hysteresis: DoorHysteresis
  private readonly window: FrameWindow
  private readonly row = new Float64Array(DOOR_FRAME_WIDTH)
  private lastFrameAt: number | null = null

  constructor (settings: PipelineSettings, startedAt = 0) {
    this.settings = Object.freeze({ window: settings.window, featureSet: settings.featureSet, hysteresis: checkHysteresis(settings.hysteresis) })
    this.window = new FrameWindow(settings.window, DOOR_FRAME_WIDTH)
    this.hysteresis = new DoorHysteresis(settings.hysteresis, startedAt)
  }

  /**
   * Adds one decoded frame (106 values). O(width).
   * @returns the window's features (a fresh array, 2 × 103 values) once the window holds k frames, else undefined
   * @throws Error when the frame does not hold 106 values
   */
  push (frame: ArrayLike<number>, at: number): Float32Array | undefined {
    doorFrameFeaturesInto(frame, this.settings.featureSet, this.row)
    this.window.push(this.row)
    this.lastFrameAt = at
    return this.window.ready ? this.window.features() : undefined
  }

  /** Feeds one window's prediction to the hysteresis. @returns whether the reported door changed */
  observe (prediction: WindowObservation, at: number): boolean {
    return this.hysteresis.push(prediction, at)
  }

  /** The reported door now. */
  get door (): HysteresisDoor {
    return this.hysteresis.door
  }

  /** Frames in the window (k once ready). */
  get framesInWindow (): number {
    return this.window.count
  }

  /**
   * After `staleAfter` without frames (caller's time unit): forgets the
   * window (old frames must not mix with new) and reports unknown.
   * @returns whether the reported state changed
   */
  expire (now: number, staleAfter: number): boolean {
    if (this.lastFrameAt !== null && now - this.lastFrameAt >= staleAfter) this.window.reset()
    return this.hysteresis.expire(now, staleAfter)
  }
}
