import { EventEmitter } from 'node:events'
import type { Door } from '../../../schemas/doors.js'

/** A door as the doors service would report it; `fields` override the defaults. */
export function door (device: number, fields: Partial<Door> = {}): Door {
  return {
    device,
    name: `pi-${device}`,
    state: 'closed',
    reason: null,
    angle: 0,
    confidence: 0.9,
    since: '2026-01-01T00:00:00.000Z',
    lastFrameAt: '2026-01-01T00:00:00.000Z',
    frameRate: 20,
    live: true,
    needsRecalibration: false,
    model: { version: 'csi-test', scope: 'global' },
    calibration: {
      status: 'idle',
      protocol: { framesPerPosition: 200, defaultAjarAngle: 15, maxAjarAngle: 30, openAngle: 90, ajarClosedLimit: 0.1 },
      captured: {},
      capture: null,
      reasons: [],
      result: null
    },
    ...fields
  }
}

/**
 * The bridge's input in tests: an in-memory doors service with the shape of
 * the real one (an EventEmitter emitting 'door' with the whole door on every
 * change and 'removed' with the id).
 */
export class MemoryDoors extends EventEmitter {
  private readonly doors = new Map<number, Door>()

  constructor (initial: Door[] = []) {
    super()
    for (const entry of initial) this.doors.set(entry.device, entry)
  }

  list (): Door[] {
    return [...this.doors.values()].sort((a, b) => a.device - b.device)
  }

  /** Stores `fields` over the door's current value and emits the result. */
  update (device: number, fields: Partial<Door> = {}): Door {
    const next = { ...(this.doors.get(device) ?? door(device)), ...fields, device }
    this.doors.set(device, next)
    this.emit('door', next)
    return next
  }

  remove (device: number): void {
    this.doors.delete(device)
    this.emit('removed', device)
  }
}
