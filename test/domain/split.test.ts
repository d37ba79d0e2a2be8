import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { blockedSplit, blockedSplitOf, tailSize } from '../../domain/split.js'
import { SESSION_A_CSV } from '../helper.js'

/** Session A's labels in file order, read without the project's parser. */
const angles = readFileSync(SESSION_A_CSV, 'utf8')
  .split('\n')
  .slice(1)
  .filter((line) => line.trim() !== '')
  .map((line) => Number(line.slice(0, line.indexOf(','))))

/** Row indices of each label, in file order. */
function rowsByLabel (labels: number[]): Map<number, number[]> {
  const byLabel = new Map<number, number[]>()
  labels.forEach((angle, row) => byLabel.set(angle, [...(byLabel.get(angle) ?? []), row]))
  return byLabel
}

test('session A: each label\'s last 20 % is the test part, nothing of that tail is trained on', () => {
  const { train, test: held } = blockedSplit(angles, 0.2)
  assert.equal(train.length + held.length, angles.length)
  assert.equal(held.length, 570, 'ceil(0.2 × n) per label: 84+80+88+76+81+78+83')
  const trainSet = new Set(train)
  for (const [angle, rows] of rowsByLabel(angles)) {
    const tail = Math.ceil(rows.length * 0.2 - 1e-9)
    const tailRows = rows.slice(rows.length - tail)
    for (const row of tailRows) assert.ok(!trainSet.has(row), `row ${row} of ${angle}°'s tail is in the train part`)
    assert.deepEqual(held.filter((row) => angles[row] === angle), tailRows, `${angle}°: the test part is exactly its tail`)
    // every train row of a label comes before every test row of it
    const lastTrain = Math.max(...train.filter((row) => angles[row] === angle))
    assert.ok(lastTrain < tailRows[0])
  }
  assert.deepEqual(train, [...train].sort((a, b) => a - b), 'train rows keep insertion order')
})

test('interleaved labels: the tail is per label, in insertion order, never random', () => {
  // A B A B … : 10 rows of 0°, 10 of 90°, interleaved
  const labels = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 0 : 90))
  const first = blockedSplit(labels, 0.3)
  assert.deepEqual(first.test, [14, 15, 16, 17, 18, 19], 'the last 3 of each label')
  assert.deepEqual(blockedSplit(labels, 0.3), first, 'the same input splits the same way')
})

test('tail sizes: at least the share asked for, one row left to train on, 0 holds out nothing', () => {
  assert.equal(tailSize(400, 0.2), 80, 'no float error rounding 80.00000000000001 up')
  assert.equal(tailSize(417, 0.2), 84)
  assert.equal(tailSize(10, 0.25), 3)
  assert.equal(tailSize(2, 0.5), 1)
  assert.equal(tailSize(1, 0.5), 0)
  assert.equal(tailSize(50, 0), 0)
  assert.deepEqual(blockedSplit([0, 0, 15, 15], 0).test, [])
  assert.throws(() => blockedSplit([0, 15], 1), /holdout must be a share in \[0, 1\), got 1/)
  assert.throws(() => blockedSplit([0, 15], -0.1), /got -0.1/)
})

test('blockedSplitOf cuts the tail of a subset (the early-stopping slice of a train part)', () => {
  const { train } = blockedSplit(angles, 0.2)
  const inner = blockedSplitOf(train, angles, 0.2)
  assert.equal(inner.train.length + inner.test.length, train.length)
  const innerTrain = new Set(inner.train)
  for (const [angle, rows] of rowsByLabel(train.map((row) => angles[row]))) {
    const labelRows = rows.map((i) => train[i])
    const tail = labelRows.slice(labelRows.length - tailSize(labelRows.length, 0.2))
    assert.deepEqual(inner.test.filter((row) => angles[row] === angle), tail)
    for (const row of tail) assert.ok(!innerTrain.has(row))
  }
})
