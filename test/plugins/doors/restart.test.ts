import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { admin, door, recordAngle, splitByAngle, waitForDoor } from '../../fixtures/doors.js'
import { listeningUrl, spawnServe } from '../../fixtures/serve-process.js'
import { sessionRows } from '../../fixtures/training.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp, tempDir } from '../../helper.js'

/**
 * 200 frames of the door closed, ajar (15°) and open at 90°: the smallest
 * calibration the protocol takes, trained in seconds. Session A cannot tell
 * ajar from closed, so it is finished with acceptAjarAsClosed.
 */
function smallCalibration () {
  const angles = splitByAngle(sessionRows())
  return [angles[0], angles[1], angles[6]].map(({ angle, head }) => ({ angle, frames: head.slice(0, 200).map((row) => row.features) }))
}

const ACCEPT = { acceptAjarAsClosed: true }

async function calibrate (url: string, device: number): Promise<void> {
  await fetch(`${url}/server/post/keep_alive`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ NAME: `door ${device}`, ID: device })
  })
  for (const { angle, frames } of smallCalibration()) await recordAngle(url, device, angle, frames)
}

test('a door\'s own model survives a restart: same version, still answering for that door', async (t) => {
  const dataDir = tempDir(t)
  const env = { DOOR_CALIBRATION_FLOOR: '0' }
  const first = await buildTestApp(t, env, { dataDir })
  await first.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(first.server.address() as AddressInfo).port}`
  await calibrate(url, 5)
  const { version } = await (await admin(url, 'POST', '/doors/5/calibration/finish', ACCEPT)).json() as { version: string }
  const ready = await waitForDoor(url, 5, (d) => d.calibration.status !== 'training')
  assert.equal(ready.calibration.status, 'ready', JSON.stringify(ready.calibration.reasons))
  assert.equal(ready.reason?.code, 'closed-or-ajar')
  await first.close()

  const second = await buildTestApp(t, env, { dataDir })
  const after = (await second.inject({ method: 'GET', url: '/doors/5' })).json()
  assert.deepEqual(after.model, { version, scope: 'door' })
  assert.equal(after.calibration.status, 'ready')
  assert.equal(after.calibration.result?.version, version, 'the result is read back from the version')
  assert.deepEqual(after.calibration.result?.gate, ready.calibration.result?.gate, 'and its verdict')
  assert.deepEqual(after.calibration.result?.selfCheck, ready.calibration.result?.selfCheck)
  assert.equal(after.reason?.code, 'closed-or-ajar', 'what this door cannot tell apart survives the restart')
  assert.deepEqual(after.calibration.reasons, ready.calibration.reasons)
  assert.equal(second.model.doorModels.get(5)?.version, version)

  // rolled back and forward like a global version: forget it, then activate it again by name
  await second.inject({ method: 'DELETE', url: '/doors/5/calibration', headers: ADMIN })
  assert.equal(second.model.doorModels.get(5), undefined)
  const activated = await second.inject({ method: 'POST', url: '/training/post/activate', headers: ADMIN, payload: { version } })
  assert.equal(activated.statusCode, 200, activated.body)
  assert.deepEqual([activated.json().scope, activated.json().device, activated.json().active], ['door', 5, true])
  assert.deepEqual((await second.inject({ method: 'GET', url: '/doors/5' })).json().model, { version, scope: 'door' })
  assert.equal(second.model.active, undefined, 'the global model was never touched')
})

test('kill -9 while a door trains: on restart the door keeps what it had, the run is reported interrupted, nothing is half-written', async (t) => {
  const dataDir = tempDir(t)
  const env = { DATA_DIR: dataDir, ADMIN_TOKEN, LOG_LEVEL: 'info', LOG_TO_FILE: 'false', DOOR_CALIBRATION_FLOOR: '0', MAX_EVENT_LOOP_DELAY_MS: '0' }
  const server = spawnServe(t, env)
  const url = await listeningUrl(server)
  await calibrate(url, 6)
  const finish = await admin(url, 'POST', '/doors/6/calibration/finish', ACCEPT)
  assert.equal(finish.status, 202)
  const { version } = await finish.json() as { version: string }
  await server.waitForLog((line) => line.msg === 'door calibration training started')
  server.child.kill('SIGKILL')
  await server.exited

  const again = spawnServe(t, env)
  const restarted = await listeningUrl(again)
  const after = await door(restarted, 6)
  assert.equal(after.model, null, 'the door keeps what it had: no model of its own')
  assert.deepEqual(after.calibration.captured, { 0: 200, 15: 200, 90: 200 }, 'its calibration frames are all there')
  const failure = await (await fetch(`${restarted}/debug/get/training_failure`)).text()
  assert.match(failure, new RegExp(`training of ${version} .*was interrupted`))
  assert.deepEqual(readdirSync(join(dataDir, 'models')).filter((name) => name.startsWith('.tmp-')), [], 'no half-written version folder')
  const models = await (await fetch(`${restarted}/training/get/models`)).json() as { versions: unknown[] }
  assert.equal(models.versions.length, 0)
  // and the calibration can simply be finished again
  assert.equal((await admin(restarted, 'POST', '/doors/6/calibration/finish', ACCEPT)).status, 202)
  const ready = await waitForDoor(restarted, 6, (d) => d.calibration.status !== 'training')
  assert.equal(ready.calibration.status, 'ready')
})
