/**
 * Evaluation figures of a classifier on a hold-out: accuracy, per-class
 * precision / recall / F1 / support, the confusion matrix, and the
 * open/closed view (closed = the 0° class) that matters to a door sensor:
 * accuracy, balanced accuracy and F1 of "closed" ("always open" already
 * scores the open share in plain accuracy). Also the door-state figures of a
 * replay (what a door reported at each counted frame), shared by the windowed
 * door model (ml/door/evaluation.ts) and the legacy per-frame model through
 * its vote smoother ({@link smoothedDoorState}).
 */
import type { DoorStateEvaluation, Evaluation, OpenClosedEvaluation } from '../schemas/model.js'
import { openClosedFigures } from './door-metrics.js'
import { isClosed } from './labels.js'
import { DoorSmoother, type DoorStateName, type LabelledSequence, type SmootherOptions } from './smoother.js'

/** Share of rows whose predicted angle is the true one (0 for no rows). */
export function accuracy (actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  checkLengths(actual, predicted)
  if (actual.length === 0) return 0
  let correct = 0
  for (let i = 0; i < actual.length; i++) if (actual[i] === predicted[i]) correct++
  return correct / actual.length
}

/** F1 from counts; 0 when it is undefined (nothing predicted and nothing there). */
function f1Score (truePositives: number, falsePositives: number, falseNegatives: number): number {
  const denominator = 2 * truePositives + falsePositives + falseNegatives
  return denominator === 0 ? 0 : 2 * truePositives / denominator
}

/**
 * Evaluates predicted angles against true ones.
 * @param labels the class angles, in model output order (rows/columns of the confusion matrix)
 * @param actual true angle of each test row
 * @param predicted predicted angle of each test row
 * @param trainRows how many rows the model was trained on (reported as is)
 * @throws Error when the lengths differ or an angle is not one of `labels`
 */
export function evaluate (labels: readonly number[], actual: ArrayLike<number>, predicted: ArrayLike<number>, trainRows: number): Evaluation {
  checkLengths(actual, predicted)
  const index = new Map(labels.map((label, i) => [label, i]))
  const classOf = (angle: number, what: string, row: number): number => {
    const i = index.get(angle)
    if (i === undefined) throw new Error(`${what} angle ${angle} of test row ${row} is not one of the labels ${labels.join(', ')}`)
    return i
  }
  const confusion = labels.map(() => labels.map(() => 0))
  const closed = new Array<boolean>(actual.length)
  const saidClosed = new Array<boolean>(actual.length)
  for (let row = 0; row < actual.length; row++) {
    confusion[classOf(actual[row], 'true', row)][classOf(predicted[row], 'predicted', row)]++
    closed[row] = isClosed(actual[row])
    saidClosed[row] = isClosed(predicted[row])
  }
  const perClass = labels.map((label, c) => {
    const truePositives = confusion[c][c]
    const support = confusion[c].reduce((a, b) => a + b, 0)
    const predictedAs = confusion.reduce((sum, row) => sum + row[c], 0)
    const precision = predictedAs === 0 ? 0 : truePositives / predictedAs
    const recall = support === 0 ? 0 : truePositives / support
    return { label, precision, recall, f1: f1Score(truePositives, predictedAs - truePositives, support - truePositives), support }
  })
  return {
    accuracy: accuracy(actual, predicted),
    labels: [...labels],
    perClass,
    confusion,
    openClosed: openClosedEvaluation(closed, saidClosed),
    trainRows,
    testRows: actual.length
  }
}

/**
 * The open/closed figures of the schema: accuracy, balanced accuracy (mean of
 * the closed and the open recall; a class with no rows is left out), F1 of
 * "closed", and `f1` (= closedF1, its name for old clients).
 * @param closed whether each row truly is closed
 * @param saidClosed the answer per row: true closed, false open, null undecided (wrong either way)
 */
export function openClosedEvaluation (closed: ArrayLike<boolean>, saidClosed: ArrayLike<boolean | null>): OpenClosedEvaluation {
  const figures = openClosedFigures(closed, saidClosed)
  return { accuracy: figures.accuracy, balancedAccuracy: figures.balancedAccuracy, closedF1: figures.closedF1, f1: figures.closedF1 }
}

/** One counted frame of a door-state replay: its true angle and what the door reported then. */
export interface ReportedFrame {
  angle: number
  state: DoorStateName
  /** The reported angle; null while unknown. */
  reportedAngle: number | null
}

/** Rows of {@link doorStateConfusion}: true closed, true open. */
export const DOOR_STATE_TRUTHS = ['closed', 'open'] as const
/** Columns of {@link doorStateConfusion}: reported closed, open, unknown. */
export const DOOR_STATE_REPORTS = ['closed', 'open', 'unknown'] as const

/** The 2 × 3 door-state confusion: rows = true (closed, open), columns = reported (closed, open, unknown). */
export function doorStateConfusion (frames: readonly ReportedFrame[]): number[][] {
  const confusion = [[0, 0, 0], [0, 0, 0]]
  for (const frame of frames) confusion[isClosed(frame.angle) ? 0 : 1][DOOR_STATE_REPORTS.indexOf(frame.state)]++
  return confusion
}

/**
 * The door-state figures of a replay (schemas/model.ts DoorStateEvaluation):
 * 7-class accuracy of the reported angle and the open/closed figures of the
 * reported state over the counted frames (unknown counts as wrong), the 2 × 3
 * confusion, and the window and latency as given.
 * @param window frames per window (the door model's k, the smoother's window)
 * @param latencyFrames the frame (1-based) of a fresh stream that first reports a state, worst over the streams
 */
export function doorStateEvaluation (frames: readonly ReportedFrame[], window: number, latencyFrames: number): DoorStateEvaluation {
  const figures = openClosedFigures(frames.map((f) => isClosed(f.angle)), frames.map((f) => f.state === 'unknown' ? null : f.state === 'closed'))
  let right = 0
  for (const frame of frames) if (frame.reportedAngle === frame.angle) right++
  return {
    accuracy: frames.length ? right / frames.length : 0,
    openClosed: { accuracy: figures.accuracy, balancedAccuracy: figures.balancedAccuracy, closedF1: figures.closedF1 },
    window,
    latencyFrames,
    confusion: doorStateConfusion(frames)
  }
}

/**
 * Counts a replayed stream the way the door-state evaluation does: from the
 * first frame that reports a state on (a stream that never reports is
 * counted from `nominal` frames on, every frame wrong).
 * @param states the reported door at each frame of one stream
 * @returns the counted frames and the (1-based) frame counting starts at
 */
export function countedFrames (
  angle: number,
  states: ReadonlyArray<{ state: DoorStateName, angle: number | null }>,
  nominal: number
): { frames: ReportedFrame[], from: number } {
  const first = states.findIndex((door) => door.state !== 'unknown')
  const from = first >= 0 ? first : Math.min(Math.max(0, nominal - 1), states.length)
  const frames: ReportedFrame[] = []
  for (let i = from; i < states.length; i++) frames.push({ angle, state: states[i].state, reportedAngle: states[i].angle })
  return { frames, from: from + 1 }
}

/**
 * The door state of a per-frame model through the legacy vote smoother
 * (domain/smoother.ts, the server's DOOR_WINDOW / DOOR_HOLD): each sequence
 * (one stretch of one label, e.g. a blocked test tail) streamed through a
 * fresh smoother and counted like the windowed engine's replay, from the
 * first reported state on ({@link countedFrames}). `window` is the
 * smoother's window; `latencyFrames` is worst over the sequences (at least
 * `hold`).
 * @param labels the class angles, in the order of each row of probabilities
 */
export function smoothedDoorState (
  sequences: readonly LabelledSequence[],
  labels: readonly number[],
  options: SmootherOptions
): DoorStateEvaluation & { frames: number } {
  const frames: ReportedFrame[] = []
  let latencyFrames = 0
  for (const sequence of sequences) {
    const smoother = new DoorSmoother(options)
    const states = Array.from(sequence.probabilities, (probabilities, index) => {
      smoother.push(probabilities, labels, index)
      const door = smoother.door
      return { state: door.state, angle: door.angle }
    })
    const counted = countedFrames(sequence.angle, states, options.hold)
    frames.push(...counted.frames)
    latencyFrames = Math.max(latencyFrames, counted.from)
  }
  return { ...doorStateEvaluation(frames, options.window, latencyFrames), frames: frames.length }
}

function checkLengths (actual: ArrayLike<number>, predicted: ArrayLike<number>): void {
  if (actual.length !== predicted.length) throw new Error(`${actual.length} true angles but ${predicted.length} predictions`)
}
