import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadBackend } from '../../ml/backend.js'
import type { ModelVersionInfo } from '../../schemas/model.js'
import { buildTestApp, tempDir } from '../helper.js'
import { sessionSlice, trainThrough } from '../fixtures/training.js'

test('activate rolls back and forward, swaps the predictor without leaking tensors, and survives a restart', async (t) => {
  const dataDir = tempDir(t)
  const frames = sessionSlice(2, 250).map((row) => row.features)
  const first = await buildTestApp(t, {}, { dataDir })
  const older = await trainThrough(first, 20, { epochs: 4, seed: 1 })
  const newer = await trainThrough(first, 25, { epochs: 4, seed: 2 })
  assert.equal(first.model.active?.version, newer)
  assert.deepEqual((await first.model.versions()).map((v) => [v.version, v.active]), [[newer, true], [older, false]])

  const activated: ModelVersionInfo[] = []
  first.model.on('activated', (info: ModelVersionInfo) => activated.push(info))
  const { tf } = await loadBackend('cpu')
  const tensors = tf.memory().numTensors
  const rolledBack = await first.model.activate(older)
  assert.equal(rolledBack.version, older)
  assert.equal(rolledBack.active, true)
  assert.equal(first.model.active?.version, older)
  assert.equal(first.model.predict(frames).version, older)
  assert.deepEqual((await first.model.versions()).map((v) => [v.version, v.active]), [[newer, false], [older, true]])
  await first.model.activate(newer)
  assert.equal(first.model.predict(frames).version, newer)
  await first.model.activate(older)
  assert.equal(tf.memory().numTensors, tensors, 'each swap disposes the predictor it replaces')
  assert.deepEqual(activated.map((info) => info.version), [older, newer, older])
  assert.equal(first.model.state, 'FINISHED_TRAINING')

  const unknown = await first.model.activate('csi-20000101-000000-000').catch((err: { statusCode: number, message: string }) => err)
  assert.equal((unknown as { statusCode: number }).statusCode, 404)
  assert.match((unknown as { message: string }).message, /no model version "csi-20000101-000000-000"/)
  await first.close()

  const second = await buildTestApp(t, {}, { dataDir })
  assert.equal(second.model.active?.version, older, 'the rolled-back version is still active after a restart')
  assert.equal(second.model.predict(frames).version, older)
  assert.equal((await second.model.evaluation())?.version, older)
  assert.equal((await second.model.evaluation(newer))?.version, newer)
})
