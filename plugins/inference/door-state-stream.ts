/**
 * GET /ml/get/door_state/stream: a server-sent-event stream of door-state
 * changes. Each open stream first gets every door's current state, then one
 * `door` event per change (the legacy DoorState fields only).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { EventStreamHub, sseEvent, type EventStreamOptions } from '../../core/event-stream.js'
import type { DoorSnapshot, DoorStates } from './door-states.js'
import type { DoorState } from '../../schemas/inference.js'

/** The open door-state streams; one `change` listener on the doors serves them all. */
export class DoorStateStream {
  private readonly hub: EventStreamHub
  private readonly doors: DoorStates
  private readonly onChange = (door: DoorSnapshot): void => this.hub.broadcast(eventOf(door))

  constructor (doors: DoorStates, options: EventStreamOptions = {}) {
    this.doors = doors
    this.hub = new EventStreamHub(options)
    doors.on('change', this.onChange)
  }

  /** Open streams. */
  get size (): number {
    return this.hub.size
  }

  /** Takes over the reply and keeps it open as an event stream. */
  open (request: FastifyRequest, reply: FastifyReply): void {
    this.hub.open(request, reply, this.doors.list().map(eventOf).join(''))
  }

  /** Ends every open stream and refuses new ones. */
  closeAll (): void {
    this.doors.off('change', this.onChange)
    this.hub.closeAll()
  }
}

function eventOf (door: DoorSnapshot): string {
  const legacy: DoorState = { device: door.device, angle: door.angle, state: door.state, confidence: door.confidence, since: door.since, lastFrameAt: door.lastFrameAt }
  return sseEvent('door', legacy)
}
