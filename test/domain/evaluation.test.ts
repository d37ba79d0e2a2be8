import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Value } from '@sinclair/typebox/value'
import { accuracy, evaluate } from '../../domain/evaluation.js'
import { Evaluation } from '../../schemas/model.js'

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
  close(evaluation.openClosed.accuracy, 2 / 3, 'open/closed accuracy')
  const empty = evaluate([0, 90], [], [], 6)
  assert.equal(empty.accuracy, 0)
  assert.ok(Value.Check(Evaluation, empty))
})

test('mismatched lengths and unknown angles are refused with a message', () => {
  assert.throws(() => evaluate([0, 90], [0, 90], [0], 1), /2 true angles but 1 predictions/)
  assert.throws(() => evaluate([0, 90], [0, 45], [0, 90], 1), /true angle 45 of test row 1 is not one of the labels 0, 90/)
})
