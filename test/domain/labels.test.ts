import { test } from 'node:test'
import assert from 'node:assert/strict'
import { angleCoverage, countByAngle } from '../../domain/labels.js'

test('the door models\' rule: the closed door plus an open angle, need frames each', () => {
  assert.deepEqual(countByAngle([0, 15, 0, 90]), new Map([[0, 2], [15, 1], [90, 1]]))
  assert.deepEqual(angleCoverage(countByAngle([0, 0, 15, 15]), 2), { hasClosed: true, openAngles: [15], short: [], enough: true })
  assert.deepEqual(angleCoverage(countByAngle([90, 0, 15, 15, 0]), 2), { hasClosed: true, openAngles: [15, 90], short: [90], enough: false })
  assert.equal(angleCoverage(countByAngle([0, 0, 0]), 1).enough, false, 'no open angle')
  assert.equal(angleCoverage(countByAngle([15, 90]), 1).enough, false, 'no closed door')
  assert.deepEqual(angleCoverage(new Map(), 1), { hasClosed: false, openAngles: [], short: [], enough: false })
})
