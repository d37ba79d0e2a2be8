/**
 * How frames reach a door's live state (DoorStates): a door with a model of
 * its own reads its frames through it, whatever route they came by; a door
 * without one has them classified by the global model (through the inference
 * area's micro-batcher) and smoothed, and watched by the global model's
 * window novelty meanwhile. Knows nothing of HTTP.
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
   * door state: the door's own model reads them at once; without one they
   * queue for the global model. Nothing is answered per frame.
   * @throws OverloadedError (503, synchronously) when the queue is full, before anything was taken in
   */
  observe (device: number, frames: readonly Float32Array[]): void {
    if (this.#options.ownModel(device)) {
      this.taken(device, frames)
      return
    }
    const pending = this.#options.classify(frames)
    this.taken(device, frames)
    // no answer is owed: without a global model the door stays unknown
    pending.then(({ batch, predictions }) => { this.classified(device, predictions, batch.labels, this.#now(), batch.version) }, () => {})
  }

  /**
   * Frames of a device taken in for classification (by this feed, or by the
   * legacy per-frame routes): counted, and read by the door's own model if it has one.
   * @returns whether the door's own model read them (its global answers are then ignored)
   */
  taken (device: number, frames: readonly Float32Array[]): boolean {
    const { states } = this.#options
    const at = this.#now()
    states.noteFrames(device, frames.length, at)
    const own = this.#options.ownModel(device)
    if (own) states.observeWindows(device, frames, own, at)
    else states.observeNovelty(device, frames, this.#options.novelty(), at)
    return own !== undefined
  }

  /** The global model's answers to a device's frames (ignored by a door that reads its frames through its own model). */
  classified (device: number, predictions: readonly Prediction[], labels: readonly number[], at: number, version: string): void {
    this.#options.states.observe(device, predictions, labels, at, version)
  }
}
