/**
 * GET /ml/get/door_state/stream: a server-sent-event stream of door-state
 * changes. Each open stream first gets every door's current state, then one
 * `door` event per change. Every stream is ended by closeAll() (the plugin
 * calls it before the server closes: an open SSE response would otherwise
 * keep app.close() waiting forever).
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DoorStates } from './door-states.js'
import type { DoorState } from '../../schemas/inference.js'

/** A client that lags this many bytes behind is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1024 * 1024

/** Settings of the stream hub. */
export interface DoorStateStreamOptions {
  /** A comment line every this many ms keeps proxies from timing out idle streams. */
  heartbeatMs?: number
}

/** The open door-state streams; one `change` listener on the doors serves them all. */
export class DoorStateStream {
  private readonly clients = new Set<ServerResponse>()
  private readonly doors: DoorStates
  private readonly heartbeatMs: number
  private heartbeat: NodeJS.Timeout | undefined
  private closed = false
  private readonly onChange = (door: DoorState): void => this.broadcast(eventOf(door))

  constructor (doors: DoorStates, options: DoorStateStreamOptions = {}) {
    this.doors = doors
    this.heartbeatMs = options.heartbeatMs ?? 15_000
    doors.on('change', this.onChange)
  }

  /** Open streams. */
  get size (): number {
    return this.clients.size
  }

  /** Takes over the reply and keeps it open as an event stream. */
  open (request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack()
    const response = reply.raw
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told not to
      'x-accel-buffering': 'no'
    })
    if (this.closed) {
      response.end()
      return
    }
    let snapshot = 'retry: 2000\n\n'
    for (const door of this.doors.list()) snapshot += eventOf(door)
    response.write(snapshot)
    this.clients.add(response)
    const forget = (): void => this.drop(response)
    request.raw.once('close', forget)
    response.once('close', forget)
    response.once('error', forget)
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), this.heartbeatMs)
      this.heartbeat.unref()
    }
  }

  /** Ends every open stream and refuses new ones. */
  closeAll (): void {
    this.closed = true
    this.doors.off('change', this.onChange)
    for (const response of this.clients) response.end()
    this.clients.clear()
    this.stopHeartbeat()
  }

  private broadcast (text: string): void {
    for (const response of this.clients) {
      if (response.writableLength > MAX_BUFFERED_BYTES) {
        response.destroy()
        this.drop(response)
        continue
      }
      response.write(text)
    }
  }

  private drop (response: ServerResponse): void {
    this.clients.delete(response)
    if (this.clients.size === 0) this.stopHeartbeat()
  }

  private stopHeartbeat (): void {
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.heartbeat = undefined
  }
}

function eventOf (door: DoorState): string {
  return `event: door\ndata: ${JSON.stringify(door)}\n\n`
}
