/**
 * What a door's calibration must hold before its model is trained, and the
 * verdict on the trained model, both in words a person at the door can act
 * on. Pure: the doors area and the model handler call it alike.
 */
import { isClosed } from '../domain/labels.js'
import { DEFAULT_HYSTERESIS } from '../domain/door-hysteresis.js'
import { DEFAULT_DOOR_TRAINING } from './door-model.js'
import { minimumFramesForEvaluation, type DoorEvaluation } from './door-evaluation.js'

/**
 * Frames each calibrated angle needs: enough to train on (two windows) and
 * to judge the model on the angle's held-out end (a window plus the enter
 * count), and never fewer than 50 per state — the measured minimum for a
 * reliable closed/open head.
 */
export const CALIBRATION_FRAMES_PER_ANGLE = Math.max(50, minimumFramesForEvaluation(DEFAULT_DOOR_TRAINING.window, DEFAULT_HYSTERESIS.enter))

/** Calibration frames in recording order. */
export interface CalibrationFrames {
  angles: readonly number[]
}

/**
 * Why a calibration cannot be trained yet; empty when it can.
 * @param frameRate the door's frames per second, to say how long to record
 */
export function calibrationProblems (calibration: CalibrationFrames, frameRate = 0): string[] {
  const counts = new Map<number, number>()
  for (const angle of calibration.angles) counts.set(angle, (counts.get(angle) ?? 0) + 1)
  const reasons: string[] = []
  const openAngles = [...counts.keys()].filter((angle) => !isClosed(angle)).sort((a, b) => a - b)
  const need = CALIBRATION_FRAMES_PER_ANGLE
  const howLong = (frames: number) => frameRate > 0 ? ` (about ${Math.ceil(frames / frameRate)} s at this door's ${frameRate.toFixed(0)} frames/s)` : ''
  if (!counts.has(0)) reasons.push(`No frames of the closed door yet: close it and record the closed position (angle 0) for at least ${need} frames${howLong(need)}.`)
  if (openAngles.length === 0) reasons.push(`No frames of the open door yet: open it (fully, then any other angle you like) and record at least ${need} frames there${howLong(need)}.`)
  for (const [angle, count] of [...counts].sort((a, b) => a[0] - b[0])) {
    if (count < need) {
      const where = isClosed(angle) ? 'closed (0°)' : `open at ${angle}°`
      reasons.push(`Only ${count} frames of the door ${where}: record ${need - count} more${howLong(need - count)}, so the model has enough to learn from and to be checked on.`)
    }
  }
  return reasons
}

/** The verdict on a trained door model: activate it, or why not. */
export function calibrationVerdict (evaluation: DoorEvaluation | undefined, floor: number): { activate: boolean, reasons: string[] } {
  if (!evaluation) return { activate: false, reasons: [`The calibration was too short to check the model on: record at least ${CALIBRATION_FRAMES_PER_ANGLE} frames of each angle.`] }
  const balanced = evaluation.doorState.openClosed.balancedAccuracy
  if (balanced >= floor) return { activate: true, reasons: [] }
  return {
    activate: false,
    reasons: [
      `On the last part of each recording the model told closed from open right ${percent(balanced)} of the time (balanced over both states); it needs ${percent(floor)} to take over this door, so the door keeps the model it had.`,
      'Record again with the door held still at each position, the receiver where it will stay, and nobody walking through during the recording; a longer recording of each position helps.'
    ]
  }
}

function percent (share: number): string {
  return `${Math.round(share * 100)} %`
}
