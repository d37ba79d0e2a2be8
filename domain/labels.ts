/**
 * Door angles and what they mean. The recordings label frames with the angle
 * the door was held at, in degrees; 0° is closed, anything else open.
 */
import { describeValue } from '../schemas/describe.js'

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
  if (typeof angle !== 'number' || !Number.isFinite(angle)) {
    return `angle must be a finite number of degrees, got ${typeof angle === 'number' ? String(angle) : describeValue(angle)}`
  }
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

/** Frames per angle, from the angles of frames in any order. */
export function countByAngle (angles: Iterable<number>): Map<number, number> {
  const counts = new Map<number, number>()
  for (const angle of angles) counts.set(angle, (counts.get(angle) ?? 0) + 1)
  return counts
}

/** How frame counts per angle stand against "the closed door plus at least one open angle, `need` frames each". */
export interface AngleCoverage {
  /** Some frames of the closed door (0°). */
  hasClosed: boolean
  /** The open angles with frames, ascending. */
  openAngles: number[]
  /** The angles with fewer than `need` frames, ascending. */
  short: number[]
  /** Both a closed and an open angle, and no angle short: the rule holds. */
  enough: boolean
}

/**
 * The door models' rule, written once: frames of the closed door and of at
 * least one open angle, `need` frames of each angle recorded. The trainer
 * (ml/door/train.ts) and the calibration (ml/door/calibration.ts, which adds
 * its ajar and wider positions) read it here; the dashboard's wizard
 * (plugins/dashboard/public, a browser page that imports nothing of the
 * server's code) restates it for the positions it asks for, with the
 * server's `framesPerPosition` as `need`.
 */
export function angleCoverage (counts: ReadonlyMap<number, number>, need: number): AngleCoverage {
  const angles = [...counts.keys()].sort((a, b) => a - b)
  const hasClosed = angles.some(isClosed)
  const openAngles = angles.filter((angle) => !isClosed(angle))
  const short = angles.filter((angle) => (counts.get(angle) ?? 0) < need)
  return { hasClosed, openAngles, short, enough: hasClosed && openAngles.length > 0 && short.length === 0 }
}
