import { test } from 'node:test'
import assert from 'node:assert/strict'
import { applyStandardisation, fitStandardisation } from '../../domain/standardise.js'

test('mean and population std per column, by hand', () => {
  // 3 rows × 2 columns: column 0 = 1, 2, 3 (mean 2, std √(2/3)); column 1 = 10, 10, 40 (mean 20, std √200)
  const matrix = Float32Array.from([1, 10, 2, 10, 3, 40])
  const stats = fitStandardisation(matrix, 2)
  assert.deepEqual(stats.mean, [2, 20])
  assert.ok(Math.abs(stats.std[0] - Math.sqrt(2 / 3)) < 1e-12)
  assert.ok(Math.abs(stats.std[1] - Math.sqrt(200)) < 1e-12)
  const standardised = applyStandardisation(Float32Array.from(matrix), stats)
  assert.ok(Math.abs(standardised[0] - -1 / Math.sqrt(2 / 3)) < 1e-6)
  assert.ok(Math.abs(standardised[5] - 20 / Math.sqrt(200)) < 1e-6)
})

test('only the listed (train) rows shape the statistics', () => {
  // rows 0–3 are the train part; row 4 is a far-off test row that must not move mean or std
  const matrix = Float32Array.from([1, 2, 3, 4, 1000])
  const train = fitStandardisation(matrix, 1, [0, 1, 2, 3])
  assert.deepEqual(train.mean, [2.5])
  assert.ok(Math.abs(train.std[0] - Math.sqrt(1.25)) < 1e-12)
  const all = fitStandardisation(matrix, 1)
  assert.notDeepEqual(all.mean, train.mean, 'using every row would give other statistics')
  // applying train statistics to the test row: far out, not squashed to a z-score of the whole set
  const test = applyStandardisation(Float32Array.from([1000]), train)
  assert.ok(Math.abs(test[0] - (1000 - 2.5) / Math.sqrt(1.25)) < 1e-3)
})

test('a constant column (CH32, the DC null) gets std 1 and maps to 0, never NaN', () => {
  const matrix = Float32Array.from([0, 5, 0, 7, 0, 9, 3.3, 5, 3.3, 5])
  const stats = fitStandardisation(matrix, 2, [0, 1, 2])
  assert.deepEqual(stats.std.slice(0, 1), [1])
  const constantNonZero = fitStandardisation(matrix, 2, [3, 4])
  assert.deepEqual(constantNonZero.std, [1, 1])
  const out = applyStandardisation(Float32Array.from(matrix), stats)
  assert.ok(out.every(Number.isFinite))
  assert.equal(out[0], 0)
})

test('bad shapes are refused with a message', () => {
  assert.throws(() => fitStandardisation(Float32Array.from([1, 2, 3]), 2), /not made of rows of 2/)
  assert.throws(() => fitStandardisation(Float32Array.from([1, 2]), 2, []), /zero rows/)
  assert.throws(() => applyStandardisation(Float32Array.from([1, 2, 3]), { mean: [0, 0], std: [1, 1] }), /does not fit/)
})
