import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'
import type { CaptureStatus, DatasetSummary } from '../../../schemas/training.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'
import { sessionSlice } from '../../fixtures/training.js'

/** Seven real frames (one per angle of session A), as the Pi's frames route takes them. */
const FRAMES = sessionSlice(1, 40).map((row) => Array.from(row.features))

async function postFrames (app: App, device: number): Promise<number> {
  const response = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: device, frames: FRAMES } })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ labelled: number }>().labelled
}

async function capture (app: App, device: number): Promise<CaptureStatus> {
  const response = await app.inject({ method: 'GET', url: `/training/get/capture/${device}` })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<CaptureStatus>()
}

async function startCapture (app: App, body: { ID: number, angle: number, seconds: number }): Promise<CaptureStatus> {
  const response = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: body })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<CaptureStatus>()
}

async function samplesAt (app: App, angle: number): Promise<number> {
  const summary = (await app.inject({ method: 'GET', url: '/training/get/dataset' })).json<DatasetSummary>()
  return summary.labels.find((label) => label.angle === angle)?.count ?? 0
}

test('a mistaken capture is cancelled by an admin: frames sent afterwards are not labelled, those before are kept or dropped as asked', async (t) => {
  const app = await buildTestApp(t)
  assert.equal((await startCapture(app, { ID: 5, angle: 33, seconds: 60 })).state, 'open')
  assert.equal(await postFrames(app, 5), 7)

  const noToken = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', payload: { ID: 5 } })
  assert.equal(noToken.statusCode, 401)
  assert.equal((await capture(app, 5)).active, true, 'a refused cancel leaves the capture running')

  const cancelled = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 5 } })
  assert.equal(cancelled.statusCode, 200, cancelled.body)
  const status = cancelled.json<CaptureStatus>()
  assert.deepEqual([status.state, status.active, status.framesStored, status.secondsLeft, status.framesDropped], ['cancelled', false, 7, 0, undefined])
  assert.equal(await postFrames(app, 5), 0, 'frames after the cancel are not labelled')
  assert.equal(await samplesAt(app, 33), 7, 'the frames before the cancel are kept by default')
  assert.equal((await capture(app, 5)).state, 'cancelled')

  const again = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 5 } })
  assert.equal(again.statusCode, 409)
  assert.match(again.json().message, /device 5 has no open capture session \(its last one is cancelled\)/)
  const never = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 9 } })
  assert.equal(never.statusCode, 409)
  const unknownField = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 5, keep: false } })
  assert.equal(unknownField.statusCode, 400)

  // the device is free at once; this time the frames are dropped, and only this capture's
  await startCapture(app, { ID: 5, angle: 33, seconds: 60 })
  assert.equal(await postFrames(app, 5), 7)
  const byHand = await app.inject({
    method: 'POST',
    url: '/training/post/samples',
    headers: ADMIN,
    payload: { ID: 5, samples: [{ angle: 33, frame: FRAMES[0] }] }
  })
  assert.equal(byHand.statusCode, 200, byHand.body)
  assert.equal(await samplesAt(app, 33), 15)
  const dropped = await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 5, keepFrames: false } })
  assert.equal(dropped.statusCode, 200, dropped.body)
  assert.deepEqual([dropped.json().state, dropped.json().framesStored, dropped.json().framesDropped], ['cancelled', 0, 7])
  assert.equal(await samplesAt(app, 33), 8, 'the first capture\'s 7 and the posted sample stay')
  assert.equal(await postFrames(app, 5), 0)
})

test('an open capture survives a restart: resumed while its time is not up, reported interrupted when it ran out while the server was down', async (t) => {
  const dataDir = tempDir(t)
  const first = await buildTestApp(t, {}, { dataDir })
  await startCapture(first, { ID: 5, angle: 45, seconds: 60 })
  await startCapture(first, { ID: 6, angle: 90, seconds: 0.4 })
  assert.equal(await postFrames(first, 5), 7)
  assert.equal(await postFrames(first, 6), 7)
  await first.close()
  // device 6's time runs out while no server listens
  await sleep(450)

  const second = await buildTestApp(t, {}, { dataDir })
  const resumed = await capture(second, 5)
  assert.deepEqual([resumed.state, resumed.active, resumed.framesStored], ['open', true, 7])
  assert.ok(resumed.secondsLeft > 50 && resumed.secondsLeft < 60, `secondsLeft ${resumed.secondsLeft}`)
  assert.ok(resumed.resumedAt !== undefined && Date.parse(resumed.resumedAt) > Date.parse(resumed.startedAt))
  assert.equal(await postFrames(second, 5), 7, 'a resumed capture labels the device\'s frames again')
  assert.equal((await capture(second, 5)).framesStored, 14)

  const interrupted = await capture(second, 6)
  assert.deepEqual([interrupted.state, interrupted.active, interrupted.framesStored, interrupted.secondsLeft], ['interrupted', false, 7, 0])
  assert.equal(await postFrames(second, 6), 0)
  assert.equal(await samplesAt(second, 90), 7, 'the interrupted capture\'s frames are kept')

  const cancelled = await second.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: 5 } })
  assert.equal(cancelled.json().state, 'cancelled')
  await second.close()

  // how each ended is still there after another restart, not a 404
  const third = await buildTestApp(t, {}, { dataDir })
  assert.deepEqual([(await capture(third, 5)).state, (await capture(third, 5)).framesStored], ['cancelled', 14])
  assert.equal((await capture(third, 6)).state, 'interrupted')
  assert.equal(await postFrames(third, 5), 0)
})
