/**
 * Server-sent-event streams of training progress: each open stream gets the
 * current progress at once, then every `progress` and `state` event of the
 * model handler. One listener pair serves all streams; a comment line every
 * HEARTBEAT_MS keeps proxies from timing out idle streams. closeAll() ends
 * every stream (app close), so open streams never hold the server up.
 */
import type { ServerResponse } from 'node:http'
import type { TrainingProgress, TrainingState } from '../../schemas/model.js'

/** How often an idle stream gets a keep-alive comment. */
export const HEARTBEAT_MS = 15_000

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

/** The open progress streams. */
export class ProgressStreams {
  readonly #source: ProgressSource
  readonly #open = new Set<ServerResponse>()
  #heartbeat: NodeJS.Timeout | undefined
  #closed = false

  constructor (source: ProgressSource) {
    this.#source = source
  }

  /** How many streams are open. */
  get size (): number {
    return this.#open.size
  }

  /** Turns `response` into a stream (headers, the current progress) and keeps it until the client leaves. */
  open (response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // nginx would otherwise buffer the events
      'x-accel-buffering': 'no'
    })
    if (this.#closed) {
      response.end()
      return
    }
    response.write(`retry: 2000\n\n${event('progress', currentProgress(this.#source))}`)
    if (this.#open.size === 0) this.#subscribe()
    this.#open.add(response)
    response.once('close', () => this.#drop(response))
  }

  /** Ends every stream and stops listening (the app is closing). */
  closeAll (): void {
    this.#closed = true
    for (const response of [...this.#open]) {
      response.end()
      this.#drop(response)
    }
  }

  readonly #onProgress = (progress: TrainingProgress) => this.#broadcast(event('progress', progress))
  readonly #onState = (state: TrainingState) => this.#broadcast(event('state', { state }))

  #subscribe (): void {
    this.#source.on('progress', this.#onProgress)
    this.#source.on('state', this.#onState)
    this.#heartbeat = setInterval(() => this.#broadcast(': keep-alive\n\n'), HEARTBEAT_MS).unref()
  }

  #drop (response: ServerResponse): void {
    if (!this.#open.delete(response) || this.#open.size > 0) return
    this.#source.off('progress', this.#onProgress)
    this.#source.off('state', this.#onState)
    clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }

  #broadcast (text: string): void {
    for (const response of this.#open) response.write(text)
  }
}

function event (name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`
}
