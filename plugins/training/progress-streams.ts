/**
 * Server-sent-event streams of training progress, on the shared
 * {@link EventStreamHub} (the door-state streams use it too, so every stream
 * has the same per-client cap and drop policy): each open stream gets the
 * current progress at once, then every `progress` and `state` event of the
 * model handler. A client that lags MAX_BUFFERED_BYTES behind is cut off (it
 * reconnects and gets the current progress again); a comment line every
 * 15 s keeps proxies from timing out idle streams; closeAll() ends every
 * stream (app close), so open streams never hold the server up.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { EventStreamHub, sseEvent, type EventStreamOptions } from '../../core/event-stream.js'
import type { TrainingProgress, TrainingState } from '../../schemas/model.js'

/** What the streams listen to (the model handler). */
export interface ProgressSource {
  readonly state: TrainingState
  readonly progress: TrainingProgress | undefined
  on (event: 'progress', listener: (progress: TrainingProgress) => void): unknown
  on (event: 'state', listener: (state: TrainingState) => void): unknown
  off (event: 'progress', listener: (progress: TrainingProgress) => void): unknown
  off (event: 'state', listener: (state: TrainingState) => void): unknown
}

/** The current progress, or an idle placeholder before the first training. */
export function currentProgress (source: Pick<ProgressSource, 'state' | 'progress'>): TrainingProgress {
  return source.progress ?? { state: source.state, epoch: 0, epochs: 0, elapsedSeconds: 0 }
}

/** The open progress streams; one listener pair on the source serves them all. */
export class ProgressStreams {
  readonly #source: ProgressSource
  readonly #hub: EventStreamHub
  readonly #onProgress = (progress: TrainingProgress): void => this.#hub.broadcast(sseEvent('progress', progress))
  readonly #onState = (state: TrainingState): void => this.#hub.broadcast(sseEvent('state', { state }))
  #closed = false

  constructor (source: ProgressSource, options: EventStreamOptions = {}) {
    this.#source = source
    this.#hub = new EventStreamHub(options)
    // a broadcast to no stream costs nothing: listening all along keeps open() simple
    source.on('progress', this.#onProgress)
    source.on('state', this.#onState)
  }

  /** How many streams are open. */
  get size (): number {
    return this.#hub.size
  }

  /** Takes over the reply and keeps it open as an event stream, starting with the current progress. */
  open (request: FastifyRequest, reply: FastifyReply): void {
    this.#hub.open(request, reply, sseEvent('progress', currentProgress(this.#source)))
  }

  /** Ends every stream, refuses new ones and stops listening (the app is closing). */
  closeAll (): void {
    if (!this.#closed) {
      this.#closed = true
      this.#source.off('progress', this.#onProgress)
      this.#source.off('state', this.#onState)
    }
    this.#hub.closeAll()
  }
}
