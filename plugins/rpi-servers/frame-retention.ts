/**
 * Keeps the unlabelled frames bounded (a Pi at 20 frames/s stores ~0.8 GB a
 * day): frames older than the retention window, and a device's frames past
 * its cap, are deleted in small batches off the request path, each batch its
 * own short transaction so a request never waits long behind one.
 */
import type { FrameStore } from './frame-store.js'

export interface FrameRetentionOptions {
  /** Hours frames are kept. */
  hours: number
  /** Most frames kept per device; 0 = no cap. */
  perDevice: number
  /** Rows one batch deletes at most. */
  batch?: number
  /** Batches one pass runs at most before it yields to the next tick of its timer. */
  batchesPerPass?: number
  /** How often a pass runs, in ms. */
  intervalMs?: number
  now?: () => number
  /** Hears of a pass that failed (e.g. SQLITE_FULL: a delete needs room in the write-ahead log); the timer keeps running. */
  onError?: (err: unknown) => void
}

/** The pruner. start() runs a pass every `intervalMs` (unref'd); stop() ends it. */
export class FrameRetention {
  readonly #store: FrameStore
  readonly #options: Required<Omit<FrameRetentionOptions, 'now' | 'onError'>>
  readonly #onError: (err: unknown) => void
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #deleted = 0

  constructor (store: FrameStore, options: FrameRetentionOptions) {
    this.#store = store
    this.#options = { batch: 2000, batchesPerPass: 10, intervalMs: 30_000, ...options }
    this.#now = options.now ?? Date.now
    this.#onError = options.onError ?? (() => {})
  }

  /** Frames deleted since start. */
  get deleted (): number {
    return this.#deleted
  }

  /**
   * One pass: at most batchesPerPass batches of at most `batch` rows.
   * @returns how many frames it deleted
   */
  pass (): number {
    const { hours, perDevice, batch, batchesPerPass } = this.#options
    const cutoff = this.#now() - hours * 3_600_000
    let deleted = 0
    for (let i = 0; i < batchesPerPass; i++) {
      let step = this.#store.pruneOlderThan(cutoff, batch)
      if (perDevice > 0 && step < batch) step += this.#store.pruneOverCap(perDevice, batch - step)
      deleted += step
      if (step < batch) break
    }
    this.#deleted += deleted
    return deleted
  }

  start (): void {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      // a throw from a timer would end the process; the next pass tries again
      try {
        this.pass()
      } catch (err) {
        this.#onError(err)
      }
    }, this.#options.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
