import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, buildTestApp } from '../../helper.js'
import type { BatchResponse } from '../../../schemas/inference.js'
import type { CaptureStatus, DatasetSummary } from '../../../schemas/training.js'
import { stringified } from '../../fixtures/frames.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'

test('frames from a device with an open capture session are also stored as labelled samples', async (t) => {
  const app = await buildTestApp(t, { INFER_MAX_QUEUE: '8' })
  const rows = sessionSlice(4, 50)
  const capture = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: 5, angle: 45, seconds: 60 } })
  assert.equal(capture.statusCode, 200, capture.body)
  const stored = async () => (await app.inject({ method: 'GET', url: '/training/get/capture/5' })).json<CaptureStatus>().framesStored
  const dataset = async () => (await app.inject({ method: 'GET', url: '/training/get/dataset' })).json<DatasetSummary>()

  // before any model exists the frame is still captured, and the 503 says so
  const single = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(rows[0]), ID: 5 } })
  assert.equal(single.statusCode, 503)
  assert.match(single.json().message, /no model.*the 1 frame\(s\) were stored as labelled samples of the open capture session/)
  assert.equal(await stored(), 1)

  // a request refused for a full queue stores nothing (the client will retry it)
  const refused = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 5, frames: Array.from({ length: 9 }, () => stringified(rows[1])) } })
  assert.equal(refused.statusCode, 503)
  assert.equal(refused.json().code, 'DS_OVERLOADED')
  assert.equal(await stored(), 1)

  const before = await dataset()
  await trainThrough(app, 20, { epochs: 2 })
  // batch with a bad frame: only the readable ones are captured and classified
  const batch = await app.inject({
    method: 'POST',
    url: '/ml/post/batch',
    payload: { ID: 5, frames: [stringified(rows[1]), 'not a frame', Array.from(rows[2].features)] }
  })
  assert.equal(batch.statusCode, 200, batch.body)
  const body = batch.json<BatchResponse>()
  assert.deepEqual([body.accepted, body.rejected, body.captured], [2, 1, 2])
  assert.equal(await stored(), 3)

  // another device without a session: classified, not captured
  const other = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 6, frames: [stringified(rows[3])] } })
  assert.equal(other.json<BatchResponse>().captured, 0)
  const after = await dataset()
  const inference = (summary: DatasetSummary) => summary.sources.find((entry) => entry.source === 'inference')?.count ?? 0
  assert.equal(inference(before), 1)
  assert.equal(inference(after), 3)
  const at45 = (summary: DatasetSummary) => summary.labels.find((entry) => entry.angle === 45)?.count ?? 0
  assert.equal(at45(after) - at45(before), 2, 'stored at the session\'s angle, whatever the frames\' true label')

  // the legacy route captures too, with a model now answering normally
  const legacy = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(rows[3]), ID: 5 } })
  assert.equal(legacy.statusCode, 200)
  assert.equal(await stored(), 4)
})
