/**
 * Door angles and what they mean. The recordings label frames with the angle
 * the door was held at, in degrees; 0° is closed, anything else open.
 */
import { describeValue } from './describe.js'

/** The angle of a closed door. */
export const CLOSED_ANGLE = 0
/** The widest angle a door is labelled with. */
export const MAX_ANGLE = 90
/** Step between the original's angle classes: legacy DATA index i means i × 15°. */
export const LEGACY_ANGLE_STEP = 15

/** Whether a door at `angle` degrees is closed. */
export function isClosed (angle: number): boolean {
  return angle === CLOSED_ANGLE
}

/** "open" or "closed" for an angle. */
export function doorStateOf (angle: number): 'open' | 'closed' {
  return isClosed(angle) ? 'closed' : 'open'
}

/** Why `angle` is not a valid label, or undefined when it is one. */
export function angleProblem (angle: unknown): string | undefined {
  // NaN and Infinity as themselves (JSON would say null)
  if (typeof angle !== 'number' || !Number.isFinite(angle)) return `angle must be a finite number of degrees, got ${typeof angle === 'number' ? String(angle) : describeValue(angle)}`
  if (angle < CLOSED_ANGLE || angle > MAX_ANGLE) return `angle must lie in ${CLOSED_ANGLE}..${MAX_ANGLE} degrees, got ${angle}`
  return undefined
}

/** The angle of the original's DOOR_ANGLE index (i × 15°). */
export function legacyAngle (index: number): number {
  return index * LEGACY_ANGLE_STEP
}

/** Distinct angles, ascending: the class order of a model. */
export function labelSet (angles: Iterable<number>): number[] {
  return [...new Set(angles)].sort((a, b) => a - b)
}
