/**
 * A hub of server-sent-event streams: each open stream first gets a
 * snapshot, then every broadcast. A client that lags MAX_BUFFERED_BYTES
 * behind is cut off (it reconnects and gets a fresh snapshot) rather than
 * buffered without bound; a comment line every heartbeatMs keeps proxies
 * from timing out idle streams; closeAll() ends every stream (an open SSE
 * response would otherwise keep app.close() waiting forever). Streams are
 * capped, per hub and across the app's hubs (MAX_EVENT_STREAMS): past the
 * cap a subscriber gets 503 + Retry-After rather than another socket.
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
import { OverloadedError } from './errors.js'

/** A client that lags this many bytes behind is cut off rather than buffered without bound. */
export const MAX_BUFFERED_BYTES = 1024 * 1024

/** Seconds a client refused for too many streams is told to wait: a slot frees only when another client leaves. */
export const STREAM_RETRY_AFTER_S = 5

/**
 * How many event streams may be open at once, shared by every hub of an app
 * (core/app.ts decorates one as `eventStreamSlots`, sized by
 * MAX_EVENT_STREAMS): each open stream holds a socket, a file descriptor and
 * up to MAX_BUFFERED_BYTES of backlog, so subscribers alone must not be able
 * to take every connection the server has.
 */
export class EventStreamSlots {
  #open = 0

  /** @param max most streams open at once, all hubs together */
  constructor (readonly max: number) {}

  /** Streams open now, all hubs together. */
  get open (): number {
    return this.#open
  }

  /** Takes a slot; false when all are taken. */
  take (): boolean {
    if (this.#open >= this.max) return false
    this.#open++
    return true
  }

  /** Gives back a slot {@link take} gave. */
  release (): void {
    if (this.#open > 0) this.#open--
  }
}

/** The 503 of a refused stream: the error handler answers it with Retry-After {@link STREAM_RETRY_AFTER_S}. */
function tooManyStreams (limit: string): Error {
  const err = new OverloadedError(`too many event streams are open (at most ${limit}): retry in ${STREAM_RETRY_AFTER_S} s`)
  return Object.assign(err, { retryAfterSeconds: STREAM_RETRY_AFTER_S })
}

/** The app's shared slots, when the app has them (a bare Fastify in a test has not). */
function appSlotsOf (request: FastifyRequest): EventStreamSlots | undefined {
  return (request.server as unknown as { eventStreamSlots?: EventStreamSlots }).eventStreamSlots
}

export interface EventStreamOptions {
  /** A comment line every this many ms keeps proxies from timing out idle streams. */
  heartbeatMs?: number
  /** A client whose unsent backlog exceeds this is cut off (default MAX_BUFFERED_BYTES). */
  maxBufferedBytes?: number
  /** Most streams this hub keeps open at once (default: only the shared slots limit it). */
  maxStreams?: number
  /** The slots shared with other hubs (default: the app's `eventStreamSlots`, when it has them). */
  slots?: EventStreamSlots
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
  readonly #maxStreams: number
  readonly #slots: EventStreamSlots | undefined
  /** The slots each open stream holds one of, to give back when it ends. */
  readonly #heldSlots = new Map<ServerResponse, EventStreamSlots>()
  #heartbeat: NodeJS.Timeout | undefined
  #closed = false
  /** Events broadcast this turn, not yet written. */
  #pending = ''
  #flushing: NodeJS.Immediate | undefined

  constructor (options: EventStreamOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 15_000
    this.#maxBufferedBytes = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES
    this.#maxStreams = options.maxStreams ?? Infinity
    this.#slots = options.slots
  }

  /** Open streams. */
  get size (): number {
    return this.#clients.size
  }

  /**
   * Takes over the reply and keeps it open as an event stream, starting with
   * `snapshot` (whole events). Past this hub's or the shared limit it throws
   * a 503 (DS_OVERLOADED, Retry-After {@link STREAM_RETRY_AFTER_S}) instead,
   * answered by the error handler with the usual body.
   */
  open (request: FastifyRequest, reply: FastifyReply, snapshot: string): void {
    let slots: EventStreamSlots | undefined
    if (!this.#closed) {
      if (this.#clients.size >= this.#maxStreams) throw tooManyStreams(`${this.#maxStreams} on this route`)
      slots = this.#slots ?? appSlotsOf(request)
      if (slots !== undefined && !slots.take()) throw tooManyStreams(`${slots.max} in all (MAX_EVENT_STREAMS)`)
    }
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
    if (slots !== undefined) this.#heldSlots.set(response, slots)
    const forget = (): void => this.#drop(response)
    request.raw.once('close', forget)
    response.once('close', forget)
    response.once('error', forget)
    // a client gone before its stream opened has had its close events already
    if (response.socket?.destroyed !== false) forget()
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
    for (const slots of this.#heldSlots.values()) slots.release()
    this.#heldSlots.clear()
    this.#stopHeartbeat()
  }

  #drop (response: ServerResponse): void {
    this.#clients.delete(response)
    // a stream ends by several events (request close, response close, error): its slot is given back once
    this.#heldSlots.get(response)?.release()
    this.#heldSlots.delete(response)
    if (this.#clients.size === 0) this.#stopHeartbeat()
  }

  #stopHeartbeat (): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }
}
