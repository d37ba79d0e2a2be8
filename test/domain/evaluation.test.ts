import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Value } from '@sinclair/typebox/value'
import {
  accuracy, countedFrames, doorStateConfusion, doorStateEvaluation, evaluate, openClosedEvaluation, smoothedDoorState, type ReportedFrame
} from '../../domain/evaluation.js'
import { DoorStateEvaluation, Evaluation } from '../../schemas/model.js'

const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} vs ${expected}`)

test('a tiny confusion case, every figure computed by hand', () => {
  // labels 0°, 45°, 90°; 8 test rows
  const actual = [0, 0, 0, 45, 45, 90, 90, 90]
  const predicted = [0, 45, 0, 45, 0, 90, 45, 90]
  const evaluation = evaluate([0, 45, 90], actual, predicted, 30)
  assert.ok(Value.Check(Evaluation, evaluation), 'matches the Evaluation schema')
  // confusion rows = true, columns = predicted
  assert.deepEqual(evaluation.confusion, [
    [2, 1, 0],
    [1, 1, 0],
    [0, 1, 2]
  ])
  close(evaluation.accuracy, 5 / 8, 'accuracy')
  const [closed, half, wide] = evaluation.perClass
  // 0°: tp 2, predicted as 0° 3 times, support 3
  close(closed.precision, 2 / 3, '0° precision')
  close(closed.recall, 2 / 3, '0° recall')
  close(closed.f1, 2 / 3, '0° F1')
  assert.equal(closed.support, 3)
  // 45°: tp 1, predicted 3, support 2 → p 1/3, r 1/2, F1 = 2·(1/6)/(5/6) = 0.4
  close(half.precision, 1 / 3, '45° precision')
  close(half.recall, 1 / 2, '45° recall')
  close(half.f1, 0.4, '45° F1')
  // 90°: tp 2, predicted 2, support 3 → p 1, r 2/3, F1 0.8
  close(wide.precision, 1, '90° precision')
  close(wide.recall, 2 / 3, '90° recall')
  close(wide.f1, 0.8, '90° F1')
  // open/closed: state right for rows 0, 2, 3, 5, 6, 7 (row 1 said open for closed, row 4 said closed for open)
  close(evaluation.openClosed.accuracy, 6 / 8, 'open/closed accuracy')
  // closed as positive: tp 2, fp 1, fn 1 → F1 = 4 / 6
  close(evaluation.openClosed.f1, 2 / 3, 'closed F1')
  close(evaluation.openClosed.closedF1, 2 / 3, 'closedF1 (= f1)')
  // closed recall 2/3 (rows 0, 2 of 0–2), open recall 4/5 (row 4 said closed) → balanced (2/3 + 4/5) / 2
  close(evaluation.openClosed.balancedAccuracy, (2 / 3 + 4 / 5) / 2, 'balanced accuracy')
  assert.equal(evaluation.trainRows, 30)
  assert.equal(evaluation.testRows, 8)
  // confusing two open angles costs 7-class accuracy but not open/closed accuracy
  close(accuracy([45, 90], [90, 45]), 0, 'accuracy of two swapped open angles')
  close(evaluate([0, 45, 90], [45, 90], [90, 45], 1).openClosed.accuracy, 1, 'their open/closed accuracy')
})

test('a class never predicted has precision 0 and F1 0, not NaN', () => {
  const evaluation = evaluate([0, 90], [0, 90, 90], [90, 90, 90], 6)
  assert.deepEqual(evaluation.perClass[0], { label: 0, precision: 0, recall: 0, f1: 0, support: 1 })
  assert.equal(evaluation.openClosed.f1, 0)
  assert.equal(evaluation.openClosed.closedF1, 0)
  close(evaluation.openClosed.accuracy, 2 / 3, 'open/closed accuracy')
  // "always open": accuracy is the open share, balanced accuracy says chance
  close(evaluation.openClosed.balancedAccuracy, 0.5, 'balanced accuracy of always open')
  const empty = evaluate([0, 90], [], [], 6)
  assert.equal(empty.accuracy, 0)
  assert.ok(Value.Check(Evaluation, empty))
})

test('mismatched lengths and unknown angles are refused with a message', () => {
  assert.throws(() => evaluate([0, 90], [0, 90], [0], 1), /2 true angles but 1 predictions/)
  assert.throws(() => evaluate([0, 90], [0, 45], [0, 90], 1), /true angle 45 of test row 1 is not one of the labels 0, 90/)
})

test('openClosedEvaluation: undecided answers are wrong either way; a class with no rows leaves the balanced mean', () => {
  const figures = openClosedEvaluation([true, true, false, false], [true, null, null, false])
  close(figures.accuracy, 2 / 4, 'accuracy')
  close(figures.balancedAccuracy, (1 / 2 + 1 / 2) / 2, 'balanced accuracy')
  // closed: tp 1, fp 0, fn 1 → 2 / 3
  close(figures.closedF1, 2 / 3, 'closed F1')
  assert.equal(figures.f1, figures.closedF1)
  close(openClosedEvaluation([false, false], [false, true]).balancedAccuracy, 1 / 2, 'open only: the open recall')
})

test('door-state figures of a replay: 2 × 3 confusion, reported angle accuracy, unknown counts as wrong', () => {
  const frames: ReportedFrame[] = [
    { angle: 0, state: 'closed', reportedAngle: 0 },
    { angle: 0, state: 'open', reportedAngle: 45 },
    { angle: 0, state: 'unknown', reportedAngle: null },
    { angle: 45, state: 'open', reportedAngle: 45 },
    { angle: 45, state: 'open', reportedAngle: 90 },
    { angle: 90, state: 'closed', reportedAngle: 0 }
  ]
  assert.deepEqual(doorStateConfusion(frames), [[1, 1, 1], [1, 2, 0]])
  const door = doorStateEvaluation(frames, 25, 27)
  assert.ok(Value.Check(DoorStateEvaluation, door), 'matches the DoorStateEvaluation schema')
  close(door.accuracy, 2 / 6, 'reported angle right for frames 0 and 3')
  close(door.openClosed.accuracy, 3 / 6, 'state right for frames 0, 3, 4')
  close(door.openClosed.balancedAccuracy, (1 / 3 + 2 / 3) / 2, 'balanced')
  // closed: tp 1, fp 1 (the 90° frame), fn 2 → 2 / 5
  close(door.openClosed.closedF1, 2 / 5, 'closed F1')
  assert.equal(door.window, 25)
  assert.equal(door.latencyFrames, 27)
  assert.deepEqual(doorStateEvaluation([], 5, 0).confusion, [[0, 0, 0], [0, 0, 0]])
})

test('countedFrames starts at the first reported state; a stream that never reports counts from the nominal latency, all wrong', () => {
  const unknown = { state: 'unknown' as const, angle: null }
  const open = { state: 'open' as const, angle: 45 }
  assert.deepEqual(countedFrames(45, [unknown, unknown, open, open], 5), {
    frames: [{ angle: 45, state: 'open', reportedAngle: 45 }, { angle: 45, state: 'open', reportedAngle: 45 }],
    from: 3
  })
  const never = countedFrames(0, [unknown, unknown, unknown, unknown], 3)
  assert.equal(never.from, 3)
  assert.deepEqual(never.frames.map((f) => f.state), ['unknown', 'unknown'])
})

test('smoothedDoorState: each sequence through a fresh vote smoother, counted from its first decision', () => {
  const labels = [0, 90]
  const closedFrame = [0.9, 0.1]
  const openFrame = [0.2, 0.8]
  const sequences = [
    { angle: 0, probabilities: Array.from({ length: 10 }, () => closedFrame) },
    // an open door the model calls closed for its first 6 frames: the smoother decides closed, then needs the window to turn
    { angle: 90, probabilities: [...Array.from({ length: 6 }, () => closedFrame), ...Array.from({ length: 14 }, () => openFrame)] }
  ]
  const door = smoothedDoorState(sequences, labels, { window: 4, hold: 3 })
  assert.equal(door.window, 4)
  // first decision at the 3rd frame of each sequence (hold 3)
  assert.equal(door.latencyFrames, 3)
  assert.equal(door.frames, 8 + 18)
  const [closedRow, openRow] = door.confusion ?? []
  assert.deepEqual(closedRow, [8, 0, 0])
  assert.equal(openRow[0] + openRow[1], 18)
  assert.ok(openRow[0] >= 4 && openRow[1] >= 10, JSON.stringify(openRow))
  close(door.openClosed.balancedAccuracy, (1 + openRow[1] / 18) / 2, 'balanced')
})
