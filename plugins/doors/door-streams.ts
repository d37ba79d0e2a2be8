/**
 * The two door event streams, both fed by the doors' one announcement turn
 * (DoorsService: every change of a turn is announced at its end):
 * - GET /ml/get/door_state/stream (legacy): every device's current state,
 *   then one `door` event per change of its state (the DoorState fields only);
 * - GET /doors/stream: every known door, then a whole Door per visible
 *   change, and `removed` when a door is removed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { EventStreamHub, sseEvent, type EventStreamOptions } from '../../core/event-stream.js'
import type { DoorSnapshot, DoorStates } from './door-states.js'
import type { DoorsService } from './doors-service.js'
import type { DoorState } from '../../schemas/inference.js'

/** The open door streams of both routes. */
export class DoorStreams {
  readonly #states: EventStreamHub
  readonly #doors: EventStreamHub
  readonly #live: DoorStates
  readonly #service: DoorsService

  constructor (live: DoorStates, service: DoorsService, options: EventStreamOptions = {}) {
    this.#live = live
    this.#service = service
    this.#states = new EventStreamHub(options)
    this.#doors = new EventStreamHub(options)
    service.on('state', (door) => this.#states.broadcast(stateEvent(door)))
    service.on('door', (door) => this.#doors.broadcast(sseEvent('door', door)))
    service.on('removed', (device) => this.#doors.broadcast(sseEvent('removed', { device })))
  }

  /** Open streams, both routes together. */
  get size (): number {
    return this.#states.size + this.#doors.size
  }

  /** GET /ml/get/door_state/stream: takes over the reply and keeps it open as an event stream. */
  openStates (request: FastifyRequest, reply: FastifyReply): void {
    this.#states.open(request, reply, this.#live.list().map(stateEvent).join(''))
  }

  /** GET /doors/stream: takes over the reply and keeps it open as an event stream. */
  openDoors (request: FastifyRequest, reply: FastifyReply): void {
    this.#doors.open(request, reply, this.#service.list().map((door) => sseEvent('door', door)).join(''))
  }

  /** Ends every open stream and refuses new ones. */
  closeAll (): void {
    this.#states.closeAll()
    this.#doors.closeAll()
  }
}

function stateEvent (door: DoorSnapshot): string {
  const legacy: DoorState = {
    device: door.device,
    angle: door.angle,
    state: door.state,
    confidence: door.confidence,
    since: door.since,
    lastFrameAt: door.lastFrameAt
  }
  return sseEvent('door', legacy)
}
