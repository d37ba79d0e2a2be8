/**
 * The micro-batcher: when gathering, frames from concurrent requests are
 * queued and classified together, so the model's per-call cost (tensor
 * set-up, kernel dispatch, read-back) is paid once per batch rather than once
 * per request; otherwise each request is classified at once (see gathers()).
 * Knows nothing of HTTP or of the model: it is given a synchronous
 * `classify` function (app.model.predict in the server).
 */
import { OverloadedError, UnavailableError } from '../../core/errors.js'

/**
 * Whether frames wait to share model calls (INFER_GATHER). On the pure-JS
 * `cpu` backend a one-frame call costs ~4 µs (bench/inference.bench.ts), so
 * gathering saves little, and under mixed load the wait for the end of the
 * event-loop turn put inference's p99 at 1.5× echo's in the soak; a native
 * backend's call crosses into libtensorflow, a fixed cost worth sharing.
 */
export function gathers (setting: 'auto' | 'always' | 'never', backend: string): boolean {
  return setting === 'always' || (setting === 'auto' && backend !== 'cpu')
}

/** What one classify call returns: at least one answer per frame, in order. */
export interface ClassifiedBatch {
  readonly predictions: readonly unknown[]
}

/** Classifies frames in one call, synchronously (so a model swap can only happen between calls). */
export type Classify<B extends ClassifiedBatch> = (frames: readonly Float32Array[]) => B

/** One caller's share of a classified batch. */
export interface BatchShare<B extends ClassifiedBatch> {
  /** The answer of the model call that classified the caller's frames (its first, if the frames needed several calls). */
  batch: B
  /** The caller's answers, one per submitted frame, in order. */
  predictions: ReadonlyArray<B['predictions'][number]>
}

/** Sizes and times (config.INFER_GATHER, INFER_MAX_BATCH, INFER_MAX_WAIT_MS, INFER_MAX_QUEUE). */
export interface MicroBatcherOptions {
  /**
   * Whether frames wait (to the end of the event-loop turn at least) to share
   * a model call with other requests' frames. False: each submit is
   * classified at once, in maxBatch chunks — worth it when a call's fixed
   * cost is small next to what the wait costs the caller (the pure-JS
   * backend: ~4 µs for a one-frame call, while under mixed load the rest of
   * a turn is tens of ms).
   */
  gather: boolean
  /** Most frames per classify call. */
  maxBatch: number
  /**
   * Longest the oldest queued frame waits for more frames while requests keep
   * arriving; 0 = send at the end of the event-loop turn that queued it.
   */
  maxWaitMs: number
  /** Most frames waiting; beyond it submit() throws OverloadedError (503). */
  maxQueue: number
  /** Called after each classify call (for metrics); must not throw. */
  onBatch?: (frames: number, seconds: number) => void
}

interface Entry<B extends ClassifiedBatch> {
  frames: readonly Float32Array[]
  resolve: (share: BatchShare<B>) => void
  reject: (err: unknown) => void
}

/**
 * When gathering (options.gather), a batch is sent: as soon as `maxBatch` frames wait; otherwise at the
 * end of the event-loop turn (setImmediate, after the I/O phase that brought
 * the requests), unless that turn brought more frames and the oldest has
 * waited less than `maxWaitMs` — then one more turn. Under closed-loop load
 * (every client waiting for its answer) a turn soon brings nothing new and
 * the batch goes at once; under open-loop load (many Pis posting on their own
 * clock) it keeps gathering up to `maxWaitMs`. An idle server adds no wait
 * at all, unlike a plain timer. At most one setImmediate is pending.
 */
export class MicroBatcher<B extends ClassifiedBatch> {
  private readonly classify: Classify<B>
  private readonly options: Readonly<MicroBatcherOptions>
  private queue: Array<Entry<B>> = []
  private queuedFrames = 0
  private immediate: NodeJS.Immediate | undefined
  /** performance.now() when the oldest queued frame arrived. */
  private oldestAt = 0
  /** Frames that arrived since the pending setImmediate was armed or last re-armed. */
  private arrivals = 0
  private closed = false
  /** Reused between calls: the frames of the batch being sent. */
  private readonly scratch: Float32Array[] = []

  constructor (classify: Classify<B>, options: MicroBatcherOptions) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError(`maxBatch must be an integer >= 1, got ${options.maxBatch}`)
    if (!(options.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${options.maxWaitMs}`)
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 1) throw new RangeError(`maxQueue must be an integer >= 1, got ${options.maxQueue}`)
    this.classify = classify
    this.options = Object.freeze({ ...options })
  }

  /** Frames waiting for the model. */
  get pending (): number {
    return this.queuedFrames
  }

  /** Whether a setImmediate is armed (tests check close() leaves none). */
  get scheduled (): boolean {
    return this.immediate !== undefined
  }

  /**
   * Queues frames for classification. The frames are not copied: the caller
   * must not change them until the promise settles.
   * @returns the caller's answers, one per frame, in order; rejects with the classify error
   * @throws OverloadedError (synchronously) when the frames do not fit in the queue; UnavailableError after close(); RangeError for no frames
   */
  submit (frames: readonly Float32Array[]): Promise<BatchShare<B>> {
    if (this.closed) throw new UnavailableError('inference is shutting down')
    if (frames.length === 0) throw new RangeError('submit at least one frame')
    if (this.queuedFrames + frames.length > this.options.maxQueue) {
      throw new OverloadedError(frames.length > this.options.maxQueue
        ? `${frames.length} frames exceed the inference queue of ${this.options.maxQueue} frames: send fewer per request`
        : `inference queue is full (${this.queuedFrames} of ${this.options.maxQueue} frames waiting): retry shortly`)
    }
    if (!this.options.gather) {
      return new Promise<BatchShare<B>>((resolve, reject) => {
        const entry = { frames, resolve, reject }
        if (frames.length >= this.options.maxBatch) this.sendLarge(entry)
        else this.run(frames, [entry])
      })
    }
    const promise = new Promise<BatchShare<B>>((resolve, reject) => {
      this.queue.push({ frames, resolve, reject })
    })
    if (this.queuedFrames === 0) this.oldestAt = performance.now()
    this.queuedFrames += frames.length
    if (this.queuedFrames >= this.options.maxBatch) {
      while (this.queuedFrames >= this.options.maxBatch) this.sendOne()
      if (this.queuedFrames === 0) this.disarm()
      else this.oldestAt = performance.now()
    } else if (this.immediate === undefined) {
      this.arrivals = 0
      this.immediate = setImmediate(this.onTurnEnd)
    } else {
      this.arrivals += frames.length
    }
    return promise
  }

  /**
   * Answers every queued frame (classifying it now) or rejects it when the
   * model cannot answer, clears the pending setImmediate, and refuses new
   * frames.
   */
  close (): void {
    this.closed = true
    this.disarm()
    while (this.queuedFrames > 0) this.sendOne()
  }

  private readonly onTurnEnd = (): void => {
    this.immediate = undefined
    if (this.queuedFrames === 0) return
    if (this.arrivals > 0 && performance.now() - this.oldestAt < this.options.maxWaitMs) {
      this.arrivals = 0
      this.immediate = setImmediate(this.onTurnEnd)
      return
    }
    // send everything that waited; the last partial batch too
    while (this.queuedFrames > 0) this.sendOne()
  }

  private disarm (): void {
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.immediate = undefined
  }

  /**
   * Sends whole entries from the head of the queue, up to maxBatch frames. An
   * entry is never split between two turns: one bigger than maxBatch is sent
   * in maxBatch chunks within this synchronous call, so all its answers come
   * from one model version.
   */
  private sendOne (): void {
    const first = this.queue[0]
    if (first.frames.length >= this.options.maxBatch) {
      this.queue.shift()
      this.queuedFrames -= first.frames.length
      this.sendLarge(first)
      return
    }
    let taken = 1
    let frames = first.frames.length
    while (taken < this.queue.length && frames + this.queue[taken].frames.length <= this.options.maxBatch) {
      frames += this.queue[taken].frames.length
      taken++
    }
    const entries = this.queue.splice(0, taken)
    this.queuedFrames -= frames
    if (entries.length === 1) {
      // the common single-request case: hand the caller's array straight through
      this.run(first.frames, entries)
      return
    }
    const scratch = this.scratch
    scratch.length = 0
    for (const entry of entries) {
      for (let i = 0; i < entry.frames.length; i++) scratch.push(entry.frames[i])
    }
    this.run(scratch, entries)
    scratch.length = 0
  }

  private run (frames: readonly Float32Array[], entries: Array<Entry<B>>): void {
    let batch: B
    const started = performance.now()
    try {
      batch = this.classify(frames)
      if (batch.predictions.length !== frames.length) throw new Error(`classify answered ${batch.predictions.length} predictions for ${frames.length} frames`)
    } catch (err) {
      for (const entry of entries) entry.reject(err)
      return
    }
    this.options.onBatch?.(frames.length, (performance.now() - started) / 1000)
    if (entries.length === 1) {
      entries[0].resolve({ batch, predictions: batch.predictions })
      return
    }
    let offset = 0
    for (const entry of entries) {
      const end = offset + entry.frames.length
      entry.resolve({ batch, predictions: batch.predictions.slice(offset, end) })
      offset = end
    }
  }

  private sendLarge (entry: Entry<B>): void {
    const { maxBatch } = this.options
    if (entry.frames.length === maxBatch) {
      this.run(entry.frames, [entry])
      return
    }
    let first: B | undefined
    const predictions: unknown[] = []
    try {
      for (let start = 0; start < entry.frames.length; start += maxBatch) {
        const chunk = entry.frames.slice(start, start + maxBatch)
        const started = performance.now()
        const batch = this.classify(chunk)
        if (batch.predictions.length !== chunk.length) throw new Error(`classify answered ${batch.predictions.length} predictions for ${chunk.length} frames`)
        this.options.onBatch?.(chunk.length, (performance.now() - started) / 1000)
        first ??= batch
        for (let i = 0; i < batch.predictions.length; i++) predictions.push(batch.predictions[i])
      }
    } catch (err) {
      entry.reject(err)
      return
    }
    entry.resolve({ batch: first as B, predictions })
  }
}
