import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ModelList } from '../../../schemas/training.js'
import { ADMIN, buildTestApp } from '../../helper.js'
import { sessionSlice } from '../../fixtures/training.js'

test('the original {TYPE: "CSI", DATA} body trains on exactly that data and stores it as samples', async (t) => {
  const app = await buildTestApp(t)
  const perAngle = 15
  const slice = sessionSlice(perAngle)
  // DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS]: 0 = phase, 1 = amplitude, index i = i × 15°
  const DATA: number[][][][] = [[], []]
  for (let a = 0; a < 7; a++) {
    const rows = slice.filter((row) => row.angle === a * 15)
    DATA[0].push(Array.from({ length: 53 }, (_, k) => rows.map((row) => row.features[53 + k])))
    DATA[1].push(Array.from({ length: 53 }, (_, k) => rows.map((row) => row.features[k])))
  }
  // the legacy clients send numbers as strings at times
  DATA[1][0][0][0] = String(DATA[1][0][0][0]) as unknown as number
  const response = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { TYPE: 'CSI', DATA, epochs: 3, seed: 1 } })
  assert.equal(response.statusCode, 202, response.body)
  assert.equal(response.json().kind, 'csi')
  assert.equal(response.json().samples, 7 * perAngle)
  await app.model.waitForTraining()
  assert.equal(app.model.state, 'FINISHED_TRAINING', app.model.lastFailure?.message)
  assert.equal(app.model.active?.version, response.json().version)
  assert.deepEqual(app.model.active?.labels, [0, 15, 30, 45, 60, 75, 90])

  // converted frame by frame: point p of angle i is row p of that angle, magnitudes first
  const stored = app.storage.db
    .prepare("SELECT angle, features, source FROM training_samples WHERE kind = 'csi' ORDER BY id")
    .all() as Array<{ angle: number, features: Buffer, source: string }>
  assert.equal(stored.length, 7 * perAngle)
  assert.ok(stored.every((row) => row.source === 'legacy-train'))
  assert.deepEqual(stored.map((row) => row.angle), slice.map((row) => row.angle))
  for (const i of [0, 17, 104]) {
    assert.deepEqual(new Float32Array(new Uint8Array(stored[i].features).buffer), slice[i].features)
  }
})

test('the original {TYPE: "RSSI", DATA} body trains a separate one-feature RSSI model; the CSI model stays active', async (t) => {
  const app = await buildTestApp(t)
  // one reading per frame: the frame's mean magnitude stands in for its RSSI
  const DATA = [0, 15, 30, 45, 60, 75, 90].map((angle) => sessionSlice(20).filter((row) => row.angle === angle)
    .map((row) => row.features.slice(0, 53).reduce((a, b) => a + b, 0) / 53))
  const response = await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { TYPE: 'RSSI', DATA, epochs: 3 } })
  assert.equal(response.statusCode, 202, response.body)
  assert.equal(response.json().kind, 'rssi')
  await app.model.waitForTraining()
  assert.equal(app.model.state, 'FINISHED_TRAINING', app.model.lastFailure?.message)
  assert.equal(app.model.active, undefined, 'no CSI model: predict() still has nothing to answer with')

  const models = (await app.inject({ method: 'GET', url: '/training/get/models' })).json<ModelList>()
  assert.equal(models.active, null)
  assert.deepEqual(models.versions.map((v) => [v.version, v.kind, v.active]), [[response.json().version, 'rssi', true]])
  const rssi = (await app.inject({ method: 'GET', url: '/training/get/dataset?kind=rssi' })).json()
  assert.equal(rssi.total, 140)
  assert.deepEqual(rssi.sources, [{ source: 'legacy-train', count: 140 }])
  assert.equal((await app.inject({ method: 'GET', url: '/training/get/dataset' })).json().total, 0)
  const meta = (await app.inject({ method: 'GET', url: `/training/get/model/${response.json().version}/meta.json` })).json()
  assert.equal(meta.meta.kind, 'rssi')
  assert.equal(meta.meta.inputSize, 1)
})
