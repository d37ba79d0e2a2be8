import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openClosedFigures, quantile, rocAuc } from '../../domain/door-metrics.js'

test('open/closed figures: balanced accuracy and closed F1, undecided counts as wrong', () => {
  // 2 closed (one found, one undecided), 6 open (5 right, 1 said closed)
  const closed = [true, true, false, false, false, false, false, false]
  const said = [true, null, false, false, false, false, false, true]
  const f = openClosedFigures(closed, said)
  assert.equal(f.accuracy, 6 / 8)
  assert.equal(f.balancedAccuracy, (1 / 2 + 5 / 6) / 2)
  // tp 1, fp 1, fn 1
  assert.equal(f.closedF1, 0.5)
  // "always open" on the same truth: high accuracy, balanced .5, F1 0
  const lazy = openClosedFigures(closed, closed.map(() => false))
  assert.equal(lazy.accuracy, 0.75)
  assert.equal(lazy.balancedAccuracy, 0.5)
  assert.equal(lazy.closedF1, 0)
})

test('ROC AUC: perfect, reversed, ties and the Mann–Whitney value', () => {
  assert.equal(rocAuc([1, 2, 3], [4, 5]), 1)
  assert.equal(rocAuc([4, 5], [1, 2, 3]), 0)
  assert.equal(rocAuc([1, 1], [1, 1]), 0.5)
  // pairs (neg, pos): (1,2) win, (1,0) loss, (3,2) loss, (3,0) loss, ties none → 1/4
  assert.equal(rocAuc([1, 3], [2, 0]), 0.25)
  assert.equal(quantile([3, 1, 2, 4, 5], 0.5), 3)
  assert.equal(quantile([0, 10], 0.9), 9)
})
