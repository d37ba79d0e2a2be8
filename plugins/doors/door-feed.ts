/**
 * How frames reach a door's live state (DoorStates): a door with a model of
 * its own reads its frames through it, whatever route they came by; a door
 * without one has them classified by the global model (through the inference
 * area's micro-batcher), and its answers smoothed and checked against the
 * global model's window novelty, frame by frame. Knows nothing of HTTP.
 */
import type { ActiveDoorModel } from '../../ml/door-models.js'
import type { Prediction } from '../../schemas/model.js'
import type { DoorStates, GlobalNovelty } from './door-states.js'

/** The global model's answers to one caller's frames (the inference area's micro-batcher). */
export interface GlobalAnswers {
  batch: { version: string, labels: number[] }
  predictions: readonly Prediction[]
}

export interface DoorFeedOptions {
  states: DoorStates
  /** The door's own active model, if it has one (`fastify.model.doorModels`). */
  ownModel: (device: number) => ActiveDoorModel | undefined
  /** The active global model's window novelty, if any (`fastify.model.novelty`). */
  novelty: () => GlobalNovelty | undefined
  /**
   * Classifies frames with the global model (`fastify.inference.submit`).
   * @throws OverloadedError (503, synchronously) when its queue is full
   */
  classify: (frames: readonly Float32Array[]) => Promise<GlobalAnswers>
  now?: () => number
}

export class DoorFeed {
  readonly #options: DoorFeedOptions
  readonly #now: () => number

  constructor (options: DoorFeedOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  /**
   * Feeds a device's frames (106 features each, stored by the caller) to its
   * door state, the request's frames together: the door's own model reads
   * them at once (one predict call for the windows they complete); without
   * one they queue for the global model (one classify call), and its answers
   * move the door when they come. Nothing is answered per frame.
   * @throws OverloadedError (503, synchronously) when the queue is full, before anything was taken in
   */
  observe (device: number, frames: readonly Float32Array[]): void {
    if (this.#options.ownModel(device)) {
      this.taken(device, frames)
      return
    }
    const pending = this.#options.classify(frames)
    this.taken(device, frames)
    pending.then(
      ({ batch, predictions }) => { this.classified(device, frames, predictions, batch.labels, this.#now(), batch.version) },
      // no answer is owed: without a global model the door stays unknown (and a novelty it had goes with that model)
      () => { this.#options.states.observeGlobal(device, [], [], [], this.#options.novelty(), this.#now()) }
    )
  }

  /**
   * Frames of a device taken in for classification (by this feed, or by the
   * legacy per-frame routes): counted, and read by the door's own model if it
   * has one; otherwise they wait for the global model's answers ({@link classified}).
   * @returns whether the door's own model read them (its global answers are then ignored)
   */
  taken (device: number, frames: readonly Float32Array[]): boolean {
    const { states } = this.#options
    const at = this.#now()
    states.noteFrames(device, frames.length, at)
    const own = this.#options.ownModel(device)
    if (own) states.observeWindows(device, frames, own, at)
    return own !== undefined
  }

  /**
   * The global model's answers to a device's frames: frame by frame, the
   * global model's window novelty then the vote smoother (`DoorStates.observeGlobal`),
   * so a batch moves the door as its frames one at a time would. Ignored by a
   * door that reads its frames through its own model.
   */
  classified (
    device: number,
    frames: readonly Float32Array[],
    predictions: readonly Prediction[],
    labels: readonly number[],
    at: number,
    version: string
  ): void {
    this.#options.states.observeGlobal(device, frames, predictions, labels, this.#options.novelty(), at, version)
  }
}
