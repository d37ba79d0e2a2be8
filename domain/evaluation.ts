/**
 * Evaluation figures of a classifier on a hold-out: accuracy, per-class
 * precision / recall / F1 / support, the confusion matrix, and the
 * open/closed view (closed = the 0° class) that matters to a door sensor.
 */
import type { Evaluation } from '../schemas/model.js'
import { isClosed } from './labels.js'

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
  let closedHit = 0
  let closedFalseAlarm = 0
  let closedMissed = 0
  let stateRight = 0
  for (let row = 0; row < actual.length; row++) {
    confusion[classOf(actual[row], 'true', row)][classOf(predicted[row], 'predicted', row)]++
    const closed = isClosed(actual[row])
    const saidClosed = isClosed(predicted[row])
    if (closed === saidClosed) stateRight++
    if (closed && saidClosed) closedHit++
    else if (saidClosed) closedFalseAlarm++
    else if (closed) closedMissed++
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
    openClosed: {
      accuracy: actual.length === 0 ? 0 : stateRight / actual.length,
      f1: f1Score(closedHit, closedFalseAlarm, closedMissed)
    },
    trainRows,
    testRows: actual.length
  }
}

function checkLengths (actual: ArrayLike<number>, predicted: ArrayLike<number>): void {
  if (actual.length !== predicted.length) throw new Error(`${actual.length} true angles but ${predicted.length} predictions`)
}
