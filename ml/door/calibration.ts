/**
 * A door's calibration, from frames to a verdict, in words a person at the
 * door can act on. Pure but for the training: the doors area, the model
 * handler, the worker and the CLI share it.
 *
 * The protocol: **closed** (0°), **ajar** (the smallest opening that must
 * count as open, 15° by default, at most {@link MAX_AJAR_ANGLE}) and **fully
 * open**, each held for at least {@link CALIBRATION_FRAMES_PER_ANGLE} frames
 * (~10 s at 20 frames/s); more angles are optional. A door calibrated only
 * closed and fully open learns a boundary somewhere in between that nothing
 * checks, and on session A reads 15–60° as closed at .99 confidence.
 *
 * {@link calibrateDoorModel} trains the door's model, evaluates it on the
 * held-out end of each angle, runs the ajar self-check
 * (ml/door/self-check.ts) and, given a gate, records the verdict in the meta:
 * {@link calibrationVerdict}.
 */
import { angleCoverage, countByAngle, isClosed } from '../../domain/labels.js'
import { DEFAULT_HYSTERESIS } from '../../domain/door-hysteresis.js'
import type { Tf } from '../model-types.js'
import type { DoorTrainingInput, TrainedDoorModel } from './model-types.js'
import { DEFAULT_DOOR_TRAINING, trainDoorModel } from './train.js'
import { evaluateDoorModel, minimumFramesForEvaluation, type AngleReadings, type DoorEvaluation, type DoorEvaluationOptions } from './evaluation.js'
import { ajarSelfCheck } from './self-check.js'

/**
 * Frames each calibrated position needs: ~10 s at 20 frames/s, the whole
 * capture used; never fewer than the evaluation's split needs (two windows
 * to train on, a window plus `enter` frames to judge on).
 */
export const CALIBRATION_FRAMES_PER_ANGLE = Math.max(200, minimumFramesForEvaluation(DEFAULT_DOOR_TRAINING.window, DEFAULT_HYSTERESIS.enter))

/** The ajar angle the wizard proposes. */
export const DEFAULT_AJAR_ANGLE = 15
/** The widest angle that may serve as the ajar position. */
export const MAX_AJAR_ANGLE = 30

/** Calibration frames in recording order. */
export interface CalibrationFrames {
  angles: readonly number[]
}

/** What a calibration's model must pass to take over its door. */
export interface CalibrationGate {
  /** Open/closed balanced accuracy on the held-out ends (DOOR_CALIBRATION_FLOOR). */
  floor: number
  /** Activate even when the door cannot tell ajar from closed: `closed` then reads `closedOrAjar`. */
  acceptAjarAsClosed: boolean
}

/** The gate's verdict on a trained door model, kept in its meta. */
export interface CalibrationVerdict {
  /** It passes and may take over its door. */
  activate: boolean
  floor: number
  acceptAjarAsClosed: boolean
  /** The balanced accuracy the floor was applied to (closed-or-ajar against open when ajar was accepted as closed); null without an evaluation. */
  balancedAccuracy: number | null
  /** Open angles this door cannot tell from closed: when activated, its `closed` means closed or any of these. Empty when the self-check passed. */
  closedOrAjar: number[]
  /** Why it was refused, or notes on how it was activated. */
  reasons: string[]
  /** What refused it: no evaluation (too short), the ajar self-check, or the floor. */
  refusedBy?: 'evaluation' | 'self-check' | 'floor'
}

function percent (share: number): string {
  return `${Math.round(share * 100)} %`
}

function angles (list: readonly number[]): string {
  const words = list.map((a) => `${a}°`)
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`
}

/**
 * Why a calibration cannot be trained yet; empty when it can.
 * @param frameRate the door's frames per second, to say how long to record
 */
export function calibrationProblems (calibration: CalibrationFrames, frameRate = 0): string[] {
  return calibrationProblemsOfCounts(countByAngle(calibration.angles), frameRate)
}

/** {@link calibrationProblems} of frame counts per angle (e.g. what a door has captured). */
export function calibrationProblemsOfCounts (counts: ReadonlyMap<number, number>, frameRate = 0): string[] {
  const reasons: string[] = []
  const need = CALIBRATION_FRAMES_PER_ANGLE
  const { hasClosed, openAngles, short } = angleCoverage(counts, need)
  const howLong = (frames: number) => frameRate > 0
    ? ` (about ${Math.ceil(frames / frameRate)} s at this door's ${frameRate.toFixed(0)} frames/s)`
    : ` (about ${Math.ceil(frames / 20)} s at 20 frames/s)`
  if (!hasClosed) reasons.push(`No frames of the closed door yet: close it and record the closed position (0°) for at least ${need} frames${howLong(need)}.`)
  const ajar = openAngles.find((angle) => angle <= MAX_AJAR_ANGLE)
  if (openAngles.length === 0) {
    reasons.push(`No frames of the open door yet: record it ajar (${DEFAULT_AJAR_ANGLE}°, the smallest opening that must count as open) ` +
      `and fully open (90°), at least ${need} frames each${howLong(need)}.`)
  } else if (ajar === undefined) {
    const recorded = openAngles.length === 1 ? `open at ${openAngles[0]}°` : 'wide open'
    reasons.push('No ajar position yet: record the door ajar — the smallest opening that must count as open, ' +
      `${DEFAULT_AJAR_ANGLE}° unless you choose another of at most ${MAX_AJAR_ANGLE}° — for at least ${need} frames${howLong(need)}. ` +
      `A door calibrated only closed and ${recorded} cannot tell ajar from closed: its boundary falls somewhere in between and nothing checks where.`)
  } else if (!openAngles.some((angle) => angle > ajar)) {
    reasons.push(`No wider open position yet: record the door fully open (90°) for at least ${need} frames${howLong(need)}, ` +
      'so that the model learns open as well as ajar.')
  }
  for (const angle of short) {
    const count = counts.get(angle) ?? 0
    const where = isClosed(angle) ? 'closed (0°)' : `open at ${angle}°`
    reasons.push(`Only ${count} frames of the door ${where}: record ${need - count} more${howLong(need - count)}, ` +
      'so the model has enough to learn from and to be checked on.')
  }
  return reasons
}

/** Balanced accuracy of closed-or-ajar (0° and `closedSide`) against the other angles, from per-angle readings. */
function balancedWith (perAngle: readonly AngleReadings[], closedSide: ReadonlySet<number>): number | null {
  let closedFrames = 0
  let closedHits = 0
  let openFrames = 0
  let openHits = 0
  for (const readings of perAngle) {
    if (isClosed(readings.angle) || closedSide.has(readings.angle)) {
      closedFrames += readings.frames
      closedHits += readings.closed
    } else {
      openFrames += readings.frames
      openHits += readings.open
    }
  }
  if (closedFrames === 0 || openFrames === 0) return null
  return (closedHits / closedFrames + openHits / openFrames) / 2
}

/**
 * The verdict on a trained door model. In order: no evaluation (too short)
 * refuses; a failed ajar self-check refuses unless `acceptAjarAsClosed`, in
 * which case the failing angles count as closed for the floor (the door
 * reports closed as `closedOrAjar`); the open/closed balanced accuracy must
 * reach the floor.
 */
export function calibrationVerdict (evaluation: DoorEvaluation | undefined, gate: CalibrationGate): CalibrationVerdict {
  const { floor, acceptAjarAsClosed } = gate
  const refuse = (
    refusedBy: CalibrationVerdict['refusedBy'],
    reasons: string[],
    balancedAccuracy: number | null = null,
    closedOrAjar: number[] = []
  ): CalibrationVerdict => ({ activate: false, floor, acceptAjarAsClosed, balancedAccuracy, closedOrAjar, reasons, refusedBy })
  if (!evaluation) {
    return refuse('evaluation', [
      `The calibration was too short to check the model on: record at least ${CALIBRATION_FRAMES_PER_ANGLE} frames of each position.`
    ])
  }
  const selfCheck = evaluation.selfCheck
  const failing = selfCheck?.checks.filter((c) => !c.passed) ?? []
  const calibrated = evaluation.labels.filter((angle) => !isClosed(angle))
  // the open positions that may read closed: each failing check's angle
  const closedOrAjar = [...new Set(failing.map((c) => c.angle))].sort((a, b) => a - b)
  const checkReasons = failing.map((c) => c.model === 'held-out'
    ? `${c.angle}° read closed on ${percent(c.closedShare)} of its held-out frames (the last part of its recording, ` +
      `replayed through a model trained on the rest; at most ${percent(selfCheck?.limit ?? 0.1)} may): this door cannot tell ajar from closed.`
    : `A model calibrated without ${c.angle}° read the door at ${c.angle}° as closed on ${percent(c.closedShare)} of its frames: ` +
      'positions between the ones you recorded may read closed.')
  const advice = 'Move the receiver or the transmitter so that the door\'s edge crosses the straight line between the two boards ' +
    'as soon as the door opens a little, then record closed, ajar and open again.'
  if (failing.length && !acceptAjarAsClosed) {
    return refuse('self-check', [
      ...checkReasons,
      advice,
      'To use this calibration anyway, finish with acceptAjarAsClosed: true — the door then reports "closed or ajar" (closedOrAjar) instead of closed.'
    ], evaluation.doorState.openClosed.balancedAccuracy, closedOrAjar)
  }
  let balanced = evaluation.doorState.openClosed.balancedAccuracy
  if (closedOrAjar.length) {
    if (closedOrAjar.length === calibrated.length) {
      return refuse('self-check', [
        ...checkReasons,
        `Every open position you recorded (${angles(calibrated)}) may read closed, so this door cannot tell open from closed at all.`,
        advice
      ], null, closedOrAjar)
    }
    balanced = balancedWith(evaluation.doorState.perAngle ?? [], new Set(closedOrAjar)) ?? balanced
  }
  const notes = closedOrAjar.length
    ? [`Accepted as "closed or ajar": this door reports closedOrAjar where it would say closed, since ${angles(closedOrAjar)} may read closed. ${advice}`]
    : []
  if (balanced >= floor) return { activate: true, floor, acceptAjarAsClosed, balancedAccuracy: balanced, closedOrAjar, reasons: notes }
  return refuse('floor', [
    `On the last part of each recording the model told ${closedOrAjar.length ? 'closed or ajar' : 'closed'} from open right ${percent(balanced)} ` +
      `of the time (balanced over both states); it needs ${percent(floor)} to take over this door, so the door keeps the model it had.`,
    'Record again with the door held still at each position, the receiver where it will stay, and nobody walking through during the recording; ' +
      'a longer recording of each position helps.'
  ], balanced, closedOrAjar)
}

/** What a calibration run is asked besides the training options. */
export interface DoorCalibrationOptions extends DoorEvaluationOptions {
  /** When given, the verdict is recorded in the meta (`gate`). */
  gate?: CalibrationGate
}

/** A calibrated door model's meta additions. */
export interface CalibratedMeta {
  evaluation?: DoorEvaluation
  gate?: CalibrationVerdict
}

/**
 * What a door calibration runs: the model the door keeps, trained on all its
 * frames; the blocked evaluation (a model on each angle's first 80 % of
 * frames, judged on the rest) with the ajar self-check; and, given a gate,
 * the verdict. A calibration too small to split (fewer than
 * {@link minimumFramesForEvaluation} frames for some angle) gets its model
 * without an evaluation (and a refusing verdict).
 */
export async function calibrateDoorModel (
  tf: Tf,
  input: DoorTrainingInput,
  options: Parameters<typeof trainDoorModel>[2] = {},
  calibration: DoorCalibrationOptions = {}
): Promise<TrainedDoorModel> {
  const trained = await trainDoorModel(tf, input, options)
  const { window, hysteresis } = trained.meta
  const need = minimumFramesForEvaluation(window, hysteresis.enter, calibration.holdout ?? 0.2)
  let evaluation: DoorEvaluation | undefined
  // the trainer has checked the closed and an open angle; the evaluation's split needs `need` frames of each
  if (angleCoverage(countByAngle(input.angles), need).enough) {
    evaluation = (await evaluateDoorModel(tf, input, options, calibration)).evaluation
    const selfCheck = await ajarSelfCheck(tf, input, evaluation, options)
    if (selfCheck) evaluation.selfCheck = selfCheck
    trained.meta.evaluation = evaluation
  }
  if (calibration.gate) trained.meta.gate = calibrationVerdict(evaluation, calibration.gate)
  return trained
}

/** The verdict a door model's meta carries (undefined for a model made before verdicts were kept). */
export function verdictOf (meta: { gate?: unknown }): CalibrationVerdict | undefined {
  const gate = meta.gate as CalibrationVerdict | undefined
  return gate && typeof gate.activate === 'boolean' && Array.isArray(gate.closedOrAjar) ? gate : undefined
}

/**
 * The open angles whose frames a door model may read as closed: the
 * verdict's, or (a model made before verdicts) those of a failed self-check.
 * A door running such a model reports `closedOrAjar` instead of closed.
 */
export function closedOrAjarAngles (meta: { gate?: unknown, evaluation?: unknown }): number[] {
  const verdict = verdictOf(meta)
  if (verdict) return verdict.closedOrAjar
  const selfCheck = (meta.evaluation as DoorEvaluation | undefined)?.selfCheck
  if (!selfCheck || selfCheck.passed) return []
  return [...new Set(selfCheck.checks.filter((c) => !c.passed).map((c) => c.angle))].sort((a, b) => a - b)
}
