import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Door } from '../../../schemas/doors.js'
import { door, postFrames, waitForDoor } from '../../fixtures/doors.js'
import { framesReceived, listen } from '../../fixtures/live-server.js'
import { sessionRows, trainThrough } from '../../fixtures/training.js'

test('frames a Pi posts to /server/post/frames move its door (the global model reads them when the door has none of its own)', async (t) => {
  const { app, url } = await listen(t)
  const device = 9
  const open = sessionRows().filter((row) => row.angle === 90).slice(0, 60).map((row) => row.features)
  await postFrames(url, device, open.slice(0, 5))
  const before = await door(url, device)
  assert.equal(before.model, null)
  assert.equal(before.state, 'unknown', 'no model answers: unknown, whatever arrives')
  assert.equal(before.live, true, 'frames imply a keep-alive')

  await trainThrough(app, 40)
  await postFrames(url, device, open, 10)
  const moved = await waitForDoor(url, device, (d: Door) => d.state !== 'unknown', 5000)
  assert.equal(moved.model?.scope, 'global')
  assert.notEqual(moved.lastFrameAt, null)
  const legacy = await (await fetch(`${url}/ml/get/door_state`)).json() as { doors: Array<{ device: number, state: string }> }
  assert.equal(legacy.doors.find((d) => d.device === device)?.state, moved.state, 'the legacy door-state route reads the same door')
  assert.equal(await framesReceived(url, device), 65, 'and every frame was stored as before')
})

test('a full inference queue answers 503 before anything is stored, so the retry stores each frame once', async (t) => {
  const { app, url } = await listen(t, { INFER_MAX_QUEUE: '8' })
  await trainThrough(app, 20)
  const frames = sessionRows().slice(0, 12).map((row) => Array.from(row.features))
  const refused = await fetch(`${url}/server/post/frames`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ID: 4, frames })
  })
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '1')
  assert.equal(await framesReceived(url, 4), 0, 'nothing of a refused batch is stored')
  // the Pi's agent retries in smaller batches
  await postFrames(url, 4, frames, 6)
  assert.equal(await framesReceived(url, 4), 12, 'each frame stored exactly once')
})
