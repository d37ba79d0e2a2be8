/**
 * Keeps the unlabelled frames bounded (a Pi at 20 frames/s stores ~0.28 GB a
 * day of raw frames, ~0.83 GB posted as features: docs/storage.md): frames
 * older than the retention window, and a device's frames past its cap, are
 * deleted off the request path.
 *
 * Every `intervalMs` (and once right after start) a round runs: batches of
 * deletes, each its own short statement, with requests answered between any
 * two. The round goes
 * on while batches come back full, so a backlog of any size drains at the
 * rate the disk allows, not at a fixed number of rows per interval (which
 * fell behind at about 33 Pis × 20 frames/s). A delete costs about what an
 * insert costs (~13–36 µs a row), so the pruner is held to `share` of the
 * main thread's time: each batch aims at `batchBudgetMs` (its rows follow
 * the delete rate measured so far) and the next one waits until the batch's
 * time is that share of the time since it began (10 ms, then 30 ms of
 * anything else at the defaults).
 */
import { isStorageFull } from '../../core/errors.js'
import type { FrameStore } from './frame-store.js'

export interface FrameRetentionOptions {
  /** Hours frames are kept. */
  hours: number
  /** Most frames kept per device; 0 = no cap. */
  perDevice: number
  /** Rows of the first batch; later ones follow the measured rate. */
  batch?: number
  /** Time one batch aims at, in ms. */
  batchBudgetMs?: number
  /** Fraction of the main thread's time the pruner may take while a backlog lasts. */
  share?: number
  /** Fewest rows one batch deletes (while there are that many to delete). */
  minBatch?: number
  /** Most rows one batch deletes. */
  maxBatch?: number
  /** How often a round starts, in ms. */
  intervalMs?: number
  now?: () => number
  /**
   * A batch failed for lack of room (a delete needs room in the write-ahead
   * log, which a full disk denies): called before the batch is tried once
   * more, at its smallest (`Storage.noticeFull` releases the disk reserve).
   */
  onFull?: () => void
  /** Hears of a batch that failed (and failed again after `onFull`); the round ends, the timer keeps running. */
  onError?: (err: unknown) => void
}

/** How long to wait after a batch of `batchMs` so that batches take `share` of the time. */
export function pauseAfterMs (batchMs: number, share: number): number {
  return batchMs * (1 - share) / share
}

/** The rows a batch deletes to take about `budgetMs` at `rowsPerMs`, within [minBatch, maxBatch]. */
export function batchRows (rowsPerMs: number, budgetMs: number, minBatch: number, maxBatch: number): number {
  return Math.min(maxBatch, Math.max(minBatch, Math.round(rowsPerMs * budgetMs)))
}

interface Round {
  cutoff: number
  /** Devices still over the cap and by how many frames; read once the old frames are gone. */
  overCap?: Array<{ device: number, excess: number }>
}

/** The pruner. start() runs rounds (the timer is unref'd); stop() ends them. */
export class FrameRetention {
  readonly #store: FrameStore
  readonly #options: Required<Omit<FrameRetentionOptions, 'now' | 'onError' | 'onFull'>>
  readonly #onFull: (() => void) | undefined
  readonly #onError: (err: unknown) => void
  readonly #now: () => number
  /** Delete rate measured on full batches (the first guess: `batch` rows in `batchBudgetMs`). */
  #rowsPerMs: number
  #round: Round | undefined
  #timer: NodeJS.Timeout | undefined
  /** The round's next batch, when one is due. */
  #next: NodeJS.Timeout | undefined
  /** How long the last full batch took, ms. */
  #lastBatchMs = 0
  #deleted = 0
  #busyMs = 0
  #batches = 0
  #rounds = 0

  constructor (store: FrameStore, options: FrameRetentionOptions) {
    this.#store = store
    this.#options = { batch: 2000, batchBudgetMs: 10, share: 0.25, minBatch: 100, maxBatch: 50_000, intervalMs: 30_000, ...options }
    if (!(this.#options.share > 0 && this.#options.share < 1)) throw new RangeError(`share must be between 0 and 1, got ${this.#options.share}`)
    this.#rowsPerMs = this.#options.batch / this.#options.batchBudgetMs
    this.#now = options.now ?? Date.now
    this.#onFull = options.onFull
    this.#onError = options.onError ?? (() => {})
  }

  /** Frames deleted since construction. */
  get deleted (): number {
    return this.#deleted
  }

  /** Time spent in batches since construction, ms. */
  get busyMs (): number {
    return this.#busyMs
  }

  /** Batches run since construction. */
  get batches (): number {
    return this.#batches
  }

  /** Rounds finished since construction. */
  get rounds (): number {
    return this.#rounds
  }

  /** Delete rate measured so far, rows per ms. */
  get rowsPerMs (): number {
    return this.#rowsPerMs
  }

  /** Whether a round is under way. */
  get running (): boolean {
    return this.#round !== undefined
  }

  /**
   * One batch of the current round (starting a round if none is under way):
   * old frames first, then frames over a device's cap, as many as its time
   * budget allows.
   * @returns how many frames it deleted; when fewer than it could, the round is over
   */
  step (): number {
    const { hours, batchBudgetMs, minBatch, maxBatch } = this.#options
    const round = this.#round ??= { cutoff: this.#now() - hours * 3_600_000 }
    const started = performance.now()
    let limit = batchRows(this.#rowsPerMs, batchBudgetMs, minBatch, maxBatch)
    const batch = { deleted: 0 }
    try {
      try {
        this.#deleteBatch(round, limit, batch)
      } catch (err) {
        if (!isStorageFull(err) || this.#onFull === undefined) throw err
        this.#onFull()
        // the smallest batch needs the least room in the log; the rate is measured afresh from there
        limit = Math.min(limit, batch.deleted + minBatch)
        this.#rowsPerMs = minBatch / batchBudgetMs
        this.#deleteBatch(round, limit, batch)
      }
    } catch (err) {
      this.#round = undefined
      this.#deleted += batch.deleted
      throw err
    }
    const { deleted } = batch
    this.#batches++
    this.#deleted += deleted
    const ms = performance.now() - started
    this.#busyMs += ms
    if (deleted === limit) {
      // a batch too quick to time says only that the rate is high
      this.#rowsPerMs = ms > 0 ? 0.5 * this.#rowsPerMs + 0.5 * deleted / ms : 2 * this.#rowsPerMs
      this.#lastBatchMs = ms
    } else {
      this.#round = undefined
      this.#rounds++
    }
    return deleted
  }

  /** Deletes old frames, then frames over a device's cap, until `batch.deleted` reaches `limit` or none is left. */
  #deleteBatch (round: Round, limit: number, batch: { deleted: number }): void {
    const { perDevice } = this.#options
    batch.deleted += this.#store.pruneOlderThan(round.cutoff, limit - batch.deleted)
    if (perDevice <= 0 || batch.deleted >= limit) return
    round.overCap ??= this.#store.excessPerDevice(perDevice)
    while (batch.deleted < limit && round.overCap.length > 0) {
      const over = round.overCap[0]
      const removed = this.#store.pruneOldestOf(over.device, Math.min(over.excess, limit - batch.deleted))
      batch.deleted += removed
      over.excess -= removed
      if (over.excess <= 0 || removed === 0) round.overCap.shift()
    }
  }

  start (): void {
    if (this.#timer) return
    this.#timer = setInterval(this.#beginRound, this.#options.intervalMs)
    this.#timer.unref()
    this.#schedule(0)
  }

  stop (): void {
    if (this.#timer) clearInterval(this.#timer)
    if (this.#next) clearTimeout(this.#next)
    this.#timer = undefined
    this.#next = undefined
    this.#round = undefined
  }

  readonly #beginRound = (): void => {
    // a round still draining when the next is due simply goes on
    if (this.#next === undefined) this.#schedule(0)
  }

  #schedule (delayMs: number): void {
    this.#next = setTimeout(this.#runBatch, delayMs)
    this.#next.unref()
  }

  readonly #runBatch = (): void => {
    this.#next = undefined
    try {
      this.step()
    } catch (err) {
      // a throw from a timer would end the process; the next round tries again
      this.#onError(err)
      return
    }
    if (this.#round !== undefined) this.#schedule(pauseAfterMs(this.#lastBatchMs, this.#options.share))
  }
}
