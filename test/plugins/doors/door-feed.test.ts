import { test } from 'node:test'
import assert from 'node:assert/strict'
import { OverloadedError } from '../../../core/errors.js'
import { DoorFeed, type GlobalAnswers } from '../../../plugins/doors/door-feed.js'
import { DoorStates } from '../../../plugins/doors/door-states.js'
import type { Prediction } from '../../../schemas/model.js'

const LABELS = [0, 45, 90]
function prediction (angle: number): Prediction {
  const probabilities = LABELS.map((label) => label === angle ? 0.8 : 0.1)
  return { angle, state: angle === 0 ? 'closed' : 'open', confidence: 0.8, probabilities }
}
const frames = (count: number) => Array.from({ length: count }, () => new Float32Array(106))

test('a door without a model of its own: its frames are counted at once, the global model\'s answers move it when they come', async () => {
  const states = new DoorStates({ window: 1, hold: 1, staleAfterS: 30 })
  const asked: number[] = []
  const feed = new DoorFeed({
    states,
    ownModel: () => undefined,
    novelty: () => undefined,
    classify: async (batch): Promise<GlobalAnswers> => {
      asked.push(batch.length)
      return { batch: { version: 'v1', labels: LABELS }, predictions: batch.map(() => prediction(90)) }
    }
  })
  feed.observe(7, frames(3))
  assert.deepEqual(asked, [3])
  assert.equal(states.get(7)?.state, 'unknown', 'nothing answered yet')
  assert.ok(states.get(7)?.lastFrameAt, 'the frames are counted before the answer')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(states.get(7)?.state, 'open')
  assert.deepEqual(states.get(7)?.model, { version: 'v1', scope: 'global' })
})

test('a full queue refuses the frames before the door took anything in (the client retries)', () => {
  const states = new DoorStates({ window: 1, hold: 1, staleAfterS: 30 })
  const feed = new DoorFeed({
    states,
    ownModel: () => undefined,
    novelty: () => undefined,
    classify: () => { throw new OverloadedError('inference queue is full') }
  })
  assert.throws(() => feed.observe(7, frames(2)), OverloadedError)
  assert.equal(states.get(7), undefined)
})

test('no global model: the door stays unknown, and nothing is thrown at the caller', async () => {
  const states = new DoorStates({ window: 1, hold: 1, staleAfterS: 30 })
  const feed = new DoorFeed({ states, ownModel: () => undefined, novelty: () => undefined, classify: async () => { throw new Error('no model') } })
  feed.observe(3, frames(1))
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(states.get(3)?.state, 'unknown')
})
