import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_DOOR_TRAINING } from '../../../ml/door/train.js'
import { doorStateProblem, shiftedSetOf } from '../../../ml/training/session-evaluation.js'

const angles = (perAngle: Record<number, number>) => Object.entries(perAngle).flatMap(([angle, n]) => Array<number>(n).fill(Number(angle)))

test('a set evaluates a door model only with the closed door, an open angle and rows enough of each', () => {
  assert.match(doorStateProblem(angles({ 15: 500, 90: 500 }), 0.2, DEFAULT_DOOR_TRAINING) ?? '',
    /^a door model needs rows of the closed door \(0°\) and of at least one open angle, got 15°, 90°$/)
  assert.match(doorStateProblem(angles({ 0: 500, 90: 20 }), 0.2, DEFAULT_DOOR_TRAINING) ?? '', /^each angle needs at least \d+ rows .*got 20 for 90°$/)
  assert.equal(doorStateProblem(angles({ 0: 500, 90: 500 }), 0.2, DEFAULT_DOOR_TRAINING), undefined)
})

test('a shifted set too short for one window, or with a bad line, is refused by name', () => {
  assert.throws(() => shiftedSetOf('other.txt', 'not a frame\n', 3),
    /^Error: other\.txt is neither a valid session CSV nor one frame per line \(1 problem\):\n {2}line 1: /)
  const frame = JSON.stringify(Array.from({ length: 106 }, () => 1))
  assert.throws(() => shiftedSetOf('other.txt', `${frame}\n${frame}\n`, 3), /other\.txt needs at least 3 consecutive frames for one window, got 2/)
  assert.equal(shiftedSetOf('other.txt', `${frame}\n${frame}\n${frame}\n`, 3).runs[0].length, 3)
})
