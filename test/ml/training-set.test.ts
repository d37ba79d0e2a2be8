import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkTrainingSet, MIN_ROWS_PER_LABEL } from '../../ml/training-set.js'

/** An RSSI set (one value a row) with `count` rows of each angle. */
function set (counts: Record<number, number>) {
  const angles = Object.entries(counts).flatMap(([angle, count]) => Array<number>(count).fill(Number(angle)))
  return { kind: 'rssi' as const, features: angles.map(() => [-50]), angles }
}

test('too few angles: the message says which angle to add', () => {
  assert.throws(() => checkTrainingSet(set({})), {
    code: 'DS_TOO_FEW_SAMPLES',
    message: 'training needs samples of at least 2 door angles; the rssi dataset has no samples: add samples of the door closed (0°) and open (e.g. 90°)'
  })
  assert.throws(() => checkTrainingSet(set({ 0: 30 })), {
    message: 'training needs samples of at least 2 door angles; the rssi dataset has only 0°: add samples of the door open (any angle 1..90°, e.g. 90°)'
  })
  assert.throws(() => checkTrainingSet(set({ 45: 30 })), {
    message: 'training needs samples of at least 2 door angles; the rssi dataset has only 45°: add samples of another angle, e.g. the door closed (0°)'
  })
})

test('too few samples of an angle: the message names it and how many more it needs', () => {
  assert.equal(MIN_ROWS_PER_LABEL, 10)
  assert.throws(() => checkTrainingSet(set({ 0: 30, 33: 1, 90: 30 })), {
    message: 'training needs at least 10 samples per door angle; too few for 33° (1): add at least 9 more of 33°, or remove that angle\'s samples'
  })
  assert.throws(() => checkTrainingSet(set({ 0: 4, 45: 30, 90: 7 })), {
    message: 'training needs at least 10 samples per door angle; too few for 0° (4), 90° (7): ' +
      'add at least 6 more of 0° and 3 more of 90°, or remove those angles\' samples'
  })
  assert.deepEqual(checkTrainingSet(set({ 0: 10, 90: 10 })), [0, 90])
})
