import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InferenceResult } from '../../../schemas/inference.js'
import { buildTestApp } from '../../helper.js'
import { stringified } from '../../fixtures/frames.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'

test('activating another version under concurrent load: no request fails, answers switch between batches and stay switched', async (t) => {
  const app = await buildTestApp(t)
  const first = await trainThrough(app, 20, { epochs: 2, seed: 1 })
  const second = await trainThrough(app, 20, { epochs: 4, seed: 2 })
  assert.notEqual(first, second)
  assert.equal(app.model.active?.version, second)

  const payloads = sessionSlice(10, 150).map(stringified)
  interface Answer { status: number, version?: string, startedAt: number, endedAt: number, body: string }
  const answers: Answer[] = []
  const load = { stop: false }
  // 32 clients, each posting one frame after another until told to stop
  const client = async (id: number) => {
    for (let n = 0; !load.stop || n < 5; n++) {
      const startedAt = performance.now()
      const response = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: payloads[(id + n) % payloads.length], ID: id } })
      const endedAt = performance.now()
      answers.push({
        status: response.statusCode,
        version: response.statusCode === 200 ? response.json<InferenceResult>().version : undefined,
        startedAt,
        endedAt,
        body: response.body
      })
    }
  }
  const clients = Array.from({ length: 32 }, (_, id) => client(id))
  // let the load build up on the second version, then roll back to the first while it runs
  while (answers.length < 100) await new Promise((resolve) => setImmediate(resolve))
  const activationStarted = performance.now()
  await app.model.activate(first)
  const activated = performance.now()
  const answersAtActivation = answers.length
  while (answers.length < answersAtActivation + 150) await new Promise((resolve) => setImmediate(resolve))
  load.stop = true
  await Promise.all(clients)

  const failed = answers.filter((answer) => answer.status !== 200)
  assert.deepEqual(failed.map((answer) => answer.body), [], 'no request failed during the swap')
  assert.ok(answers.every((answer) => answer.version === first || answer.version === second))
  assert.ok(answers.some((answer) => answer.version === second && answer.startedAt < activationStarted), 'answers before the swap came from the old version')
  const afterSwap = answers.filter((answer) => answer.startedAt > activated)
  assert.ok(afterSwap.length >= 100)
  assert.ok(afterSwap.every((answer) => answer.version === first), 'every request sent after activate() resolved was answered by the new version')
  // the switch happens once: after the first answer from the new version, no later request gets the old one
  const firstNew = Math.min(...answers.filter((answer) => answer.version === first).map((answer) => answer.endedAt))
  assert.ok(answers.filter((answer) => answer.startedAt > firstNew).every((answer) => answer.version === first))
  // door states of all 32 devices kept working through the label-compatible swap
  const doors = (await app.inject({ method: 'GET', url: '/ml/get/door_state' })).json<{ doors: unknown[] }>().doors
  assert.equal(doors.length, 32)
})
