import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Door } from '../../../schemas/doors.js'
import { rawPiFrames } from '../../fixtures/frames.js'
import { ADMIN, buildTestApp } from '../../helper.js'

test('a door\'s calibration counts follow samples deleted through /training/post/delete_samples', async (t) => {
  const app = await buildTestApp(t)
  const door = async () => (await app.inject({ method: 'GET', url: '/doors/5' })).json<Door>()
  assert.equal((await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'back', ID: 5 } })).statusCode, 200)
  for (const angle of [0, 90]) {
    const started = await app.inject({ method: 'POST', url: '/doors/5/calibration/capture', headers: ADMIN, payload: { angle, frames: 12, seconds: 600 } })
    assert.equal(started.statusCode, 202, started.body)
    const posted = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 5, frames: rawPiFrames().slice(0, 12) } })
    assert.equal(posted.statusCode, 200, posted.body)
  }
  assert.deepEqual((await door()).calibration.captured, { 0: 12, 90: 12 })

  const deleted = await app.inject({
    method: 'POST',
    url: '/training/post/delete_samples',
    headers: ADMIN,
    payload: { source: 'calibration', device: 5, angle: 90 }
  })
  assert.equal(deleted.json().deleted, 12)
  assert.deepEqual((await door()).calibration.captured, { 0: 12 }, 'the door no longer counts what was deleted')
})
