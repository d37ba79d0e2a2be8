import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, DEFAULT_BACKOFF, delayBounds, nominalDelay } from '../../domain/backoff.js'

test('the nominal delay doubles from the initial delay up to the cap', () => {
  const options = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((attempt) => nominalDelay(attempt, options)), [100, 200, 400, 800, 1000, 1000, 1000])
})

test('a very long outage stays at the cap (no Infinity, no NaN)', () => {
  assert.equal(nominalDelay(5000), DEFAULT_BACKOFF.maxMs)
  assert.equal(backoffDelay(5000, DEFAULT_BACKOFF, () => 0), DEFAULT_BACKOFF.maxMs)
})

test('jitter keeps each delay within [nominal × (1 − jitter), nominal]', () => {
  const options = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.5 }
  // the extremes of the random source give the bounds exactly
  assert.equal(backoffDelay(3, options, () => 0), 2000)
  assert.equal(backoffDelay(3, options, () => 0.999999), 2000 * (1 - 0.5 * 0.999999))
  assert.deepEqual(delayBounds(3, options), { min: 1000, max: 2000 })
  for (let attempt = 0; attempt < 12; attempt++) {
    const { min, max } = delayBounds(attempt, options)
    const delays = Array.from({ length: 200 }, () => backoffDelay(attempt, options))
    for (const delay of delays) assert.ok(delay > min - 1e-9 && delay <= max, `attempt ${attempt}: ${delay} outside [${min}, ${max}]`)
    // the jitter really spreads the delays: two clients rarely pick the same one
    assert.ok(new Set(delays).size > 150, `attempt ${attempt}: only ${new Set(delays).size} distinct delays`)
  }
})

test('jitter 0 gives the nominal schedule, jitter 1 may retry at once', () => {
  const steady = { initialMs: 10, maxMs: 80, factor: 3, jitter: 0 }
  assert.deepEqual([0, 1, 2].map((attempt) => backoffDelay(attempt, steady, Math.random)), [10, 30, 80])
  assert.deepEqual(delayBounds(2, { ...steady, jitter: 1 }), { min: 0, max: 80 })
})
