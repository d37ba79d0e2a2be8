/**
 * A hub of server-sent-event streams: each open stream first gets a
 * snapshot, then every broadcast. A client that lags MAX_BUFFERED_BYTES
 * behind is cut off (it reconnects and gets a fresh snapshot) rather than
 * buffered without bound; a comment line every heartbeatMs keeps proxies
 * from timing out idle streams; closeAll() ends every stream (an open SSE
 * response would otherwise keep app.close() waiting forever).
 *
 * Broadcasts are written at the end of the event-loop turn (setImmediate), all
 * of a turn's events in one write per client: a change seen while answering a
 * request (a door moved by an inference) then costs that request nothing,
 * and a burst costs each client one write rather than one per event (the
 * soak's 400 subscribers were sent ~17,000 events a second, each its own
 * write).
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** A client that lags this many bytes behind is cut off rather than buffered without bound. */
export const MAX_BUFFERED_BYTES = 1024 * 1024

export interface EventStreamOptions {
  /** A comment line every this many ms keeps proxies from timing out idle streams. */
  heartbeatMs?: number
  /** A client whose unsent backlog exceeds this is cut off (default MAX_BUFFERED_BYTES). */
  maxBufferedBytes?: number
}

/** One `event:`/`data:` record. */
export function sseEvent (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** The open streams of one route. */
export class EventStreamHub {
  readonly #clients = new Set<ServerResponse>()
  readonly #heartbeatMs: number
  readonly #maxBufferedBytes: number
  #heartbeat: NodeJS.Timeout | undefined
  #closed = false
  /** Events broadcast this turn, not yet written. */
  #pending = ''
  #flushing: NodeJS.Immediate | undefined

  constructor (options: EventStreamOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 15_000
    this.#maxBufferedBytes = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES
  }

  /** Open streams. */
  get size (): number {
    return this.#clients.size
  }

  /** Takes over the reply and keeps it open as an event stream, starting with `snapshot` (whole events). */
  open (request: FastifyRequest, reply: FastifyReply, snapshot: string): void {
    reply.hijack()
    const response = reply.raw
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to
      'x-accel-buffering': 'no'
    })
    if (this.#closed) {
      response.end()
      return
    }
    // what was broadcast before this snapshot was taken belongs to the clients that were there
    this.#flush()
    response.write(`retry: 2000\n\n${snapshot}`)
    this.#clients.add(response)
    const forget = (): void => this.#drop(response)
    request.raw.once('close', forget)
    response.once('close', forget)
    response.once('error', forget)
    if (!this.#heartbeat) {
      this.#heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), this.#heartbeatMs)
      this.#heartbeat.unref()
    }
  }

  /** Sends whole events (or a comment) to every open stream, at the end of this event-loop turn. */
  broadcast (text: string): void {
    if (this.#clients.size === 0) return
    this.#pending += text
    this.#flushing ??= setImmediate(this.#flush)
  }

  readonly #flush = (): void => {
    if (this.#flushing) clearImmediate(this.#flushing)
    this.#flushing = undefined
    const text = this.#pending
    this.#pending = ''
    if (text === '') return
    for (const response of this.#clients) {
      if (response.writableLength > this.#maxBufferedBytes) {
        response.destroy()
        this.#drop(response)
        continue
      }
      response.write(text)
    }
  }

  /** Ends every open stream (after what was broadcast so far) and refuses new ones. */
  closeAll (): void {
    this.#closed = true
    this.#flush()
    for (const response of this.#clients) response.end()
    this.#clients.clear()
    this.#stopHeartbeat()
  }

  #drop (response: ServerResponse): void {
    this.#clients.delete(response)
    if (this.#clients.size === 0) this.#stopHeartbeat()
  }

  #stopHeartbeat (): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }
}
