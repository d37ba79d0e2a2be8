/**
 * The legacy flow driven only through the generated typed client against a
 * real listening server: keep-alive, list of servers, frames, import, train,
 * poll status, inference, door state. The `@ts-expect-error` lines are
 * checked by `tsc --noEmit` (npm test's typecheck): if a wrong body ever
 * compiled, the unused directive would fail the typecheck.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createDoorsenseClient } from '../../client/index.js'
import { ADMIN_TOKEN, SESSION_A_CSV } from '../helper.js'
import { listen } from '../fixtures/live-server.js'
import { esp32Lines as recordedEsp32Lines, rawPiLines } from '../fixtures/frames.js'

const DEVICE_TOKEN = 'client-test-device-token'
const esp32Lines = recordedEsp32Lines()
const piFrames = rawPiLines()

test('the legacy flow through the typed client, against a listening server', async (t) => {
  const { url } = await listen(t, { DEVICE_TOKEN })
  const pi = createDoorsenseClient(url, { token: DEVICE_TOKEN })
  const admin = createDoorsenseClient(url, { token: ADMIN_TOKEN })

  // keep-alive and the live list
  const alive = await pi.POST('/server/post/keep_alive', { body: { NAME: 'pi-porch', ID: 5 } })
  assert.equal(alive.response.status, 200)
  assert.equal(alive.data?.name, 'pi-porch')
  const servers = await pi.GET('/app/get/list_of_servers')
  assert.deepEqual(servers.data?.map(({ id, name, addr }) => ({ id, name, addr })), [{ id: 5, name: 'pi-porch', addr: '127.0.0.1' }])

  // frames, in both raw encodings
  const frames = await pi.POST('/server/post/frames', { body: { ID: 5, frames: [...esp32Lines, ...piFrames] } })
  assert.deepEqual(frames.data, { accepted: 332, rejected: [], labelled: 0 })

  // import a session CSV (every 10th row of session A, ~40 per angle)
  const [header, ...rows] = readFileSync(SESSION_A_CSV, 'utf8').trim().split('\n')
  const csv = [header, ...rows.filter((_, i) => i % 10 === 0)].join('\n') + '\n'
  const imported = await admin.POST('/training/post/import', {
    params: { query: { ID: 5 } },
    // the route reads the CSV as a stream, so its schema declares no request body: pass it through as text
    body: csv as never,
    bodySerializer: () => csv,
    headers: { 'content-type': 'text/csv' }
  })
  assert.equal(imported.error, undefined, JSON.stringify(imported.error))
  assert.equal(imported.data?.imported, 284)
  assert.deepEqual(imported.data?.labels.map(({ angle }) => angle), [0, 15, 30, 45, 60, 75, 90])

  // train, and poll the legacy status (plain text) until it finishes
  const before = await pi.GET('/training/get/training_status', { parseAs: 'text' })
  assert.equal(before.data, 'MODEL_DOESNT_EXIST')
  const started = await admin.POST('/training/post/train', { body: { epochs: 5 } })
  assert.equal(started.response.status, 202)
  assert.equal(started.data?.accepted, true)
  assert.equal(started.data?.samples, 284)
  let status: string | undefined
  const polls: string[] = []
  for (let i = 0; i < 600; i++) {
    status = (await pi.GET('/training/get/training_status', { parseAs: 'text' })).data
    if (status !== undefined && polls.at(-1) !== status) polls.push(status)
    if (status === 'FINISHED_TRAINING' || status === 'TRAINING_FAILED') break
    await sleep(100)
  }
  assert.equal(status, 'FINISHED_TRAINING', `states seen: ${polls.join(' -> ')}`)
  const progress = await pi.GET('/training/get/progress')
  assert.equal(progress.data?.epoch, 5)
  assert.equal(progress.data?.version, started.data?.version)

  // inference: the legacy one-frame route and the batch route
  const one = await pi.POST('/ml/post/inference', { body: { payload: piFrames[0], ID: 5 } })
  assert.equal(one.error, undefined, JSON.stringify(one.error))
  assert.ok([0, 15, 30, 45, 60, 75, 90].includes(one.data!.angle))
  assert.equal(one.data?.version, started.data?.version)
  const batch = await pi.POST('/ml/post/batch', { body: { ID: 5, frames: [...piFrames.slice(0, 30), '[1, 2]'] } })
  assert.equal(batch.data?.results.length, 31)
  assert.equal(batch.data?.accepted, 30)
  assert.match(batch.data?.results[30].error ?? '', /got 2/)
  const latest = await pi.GET('/ml/get/inference_results')
  assert.equal(latest.response.status, 200)

  // door state of the Pi that sent the frames
  const doors = await pi.GET('/ml/get/door_state')
  const door = doors.data?.doors.find((candidate) => candidate.device === 5)
  assert.ok(door, JSON.stringify(doors.data))
  assert.ok(['open', 'closed', 'unknown'].includes(door.state))
  assert.ok(door.lastFrameAt !== null)
})

test('errors come back typed; a wrong body is a TypeScript error (and a 400)', async (t) => {
  const { url } = await listen(t, { DEVICE_TOKEN })
  const pi = createDoorsenseClient(url, { token: DEVICE_TOKEN })

  // the device token does not grant admin routes
  const train = await pi.POST('/training/post/train', { body: {} })
  assert.equal(train.data, undefined)
  assert.equal(train.error?.statusCode, 403)
  assert.match(train.error?.message ?? '', /device token does not grant admin routes/)

  const stranger = createDoorsenseClient(url)
  const unauthorised = await stranger.POST('/server/post/frames', { body: { ID: 5, frames: [piFrames[0]] } })
  assert.equal(unauthorised.error?.statusCode, 401)

  // @ts-expect-error NAME must be a string and ID a number: this body does not compile
  const wrong = await pi.POST('/server/post/keep_alive', { body: { NAME: 7, ID: 'five' } })
  assert.equal(wrong.response.status, 400)
  assert.match(wrong.error?.message ?? '', /body\/NAME must be a string, got 7/)

  // @ts-expect-error frames is required
  const missing = await pi.POST('/server/post/frames', { body: { ID: 5 } })
  assert.equal(missing.response.status, 400)
  assert.match(missing.error?.message ?? '', /frames/)

  // @ts-expect-error no such route
  const nowhere = await pi.GET('/server/get/frames')
  assert.equal(nowhere.response.status, 404)

  // a server that is not there rejects the call
  const gone = createDoorsenseClient('http://127.0.0.1:1')
  await assert.rejects(gone.GET('/debug/get/exists', { parseAs: 'text' }), /fetch failed/)
})
