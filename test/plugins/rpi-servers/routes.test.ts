import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'
import { parseFrame } from '../../../domain/frames.js'
import { storedFrame } from '../../../plugins/rpi-servers/frame-store.js'
import { ADMIN, ESP32_LINES, RPI_RAW_FRAMES, SESSION_A_CSV, buildTestApp, tempDir } from '../../helper.js'

const piLine = readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n')[0]
const esp32Line = readFileSync(ESP32_LINES, 'utf8').split('\n')[0]
const sessionRow = readFileSync(SESSION_A_CSV, 'utf8').split('\n')[1].split(',').slice(1).map(Number)

const keepAlive = (app: App, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: payload as object, headers })
const postFrames = (app: App, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/server/post/frames', payload: payload as object, headers })
const liveList = async (app: App) => (await app.inject({ url: '/app/get/list_of_servers' })).json() as Array<{ id: number }>

/** Rows in the tables the area owns, read straight from SQLite. */
function stored (app: App): { devices: number, frames: number } {
  const count = (table: string) => (app.storage.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  return { devices: count('rpi_devices'), frames: count('rpi_frames') }
}

test('keep_alive registers the Pi with its address; list_of_servers shows it', async (t) => {
  const app = await buildTestApp(t)
  const before = Date.now()
  const res = await keepAlive(app, { NAME: 'front-door', ID: 7 })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json().id, 7)
  const list = await app.inject({ url: '/app/get/list_of_servers' })
  assert.equal(list.statusCode, 200)
  const [pi, ...others] = list.json() as Array<{ addr: string, name: string, id: number, lastSeen: string }>
  assert.deepEqual(others, [])
  assert.deepEqual([pi.addr, pi.name, pi.id], ['127.0.0.1', 'front-door', 7])
  assert.ok(Date.parse(pi.lastSeen) >= before - 5 && Date.parse(pi.lastSeen) <= Date.now())
  assert.deepEqual(stored(app).devices, 1)
})

test('keep_alive accepts the object JSON-encoded as a string (the original\'s quirk)', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({
    method: 'POST',
    url: '/server/post/keep_alive',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(JSON.stringify({ NAME: 'garage', ID: 32767 }))
  })
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual((await liveList(app)).map((d) => d.id), [32767])
})

test('keep_alive refuses bad bodies with a 4xx naming the problem, and stores nothing', async (t) => {
  const app = await buildTestApp(t)
  const json = { 'content-type': 'application/json' }
  const cases: Array<{ body: unknown, headers?: Record<string, string>, status: number, message: RegExp }> = [
    { body: { NAME: 'pi', ID: 'abc' }, status: 400, message: /body\/ID must be an integer 0\.\.32767 .*got "abc"$/ },
    { body: { NAME: 'pi', ID: 40000 }, status: 400, message: /body\/ID must be <= 32767/ },
    { body: { NAME: 'pi', ID: -1 }, status: 400, message: /body\/ID must be >= 0/ },
    { body: { NAME: 'pi', ID: 2.5 }, status: 400, message: /body\/ID must be an integer .*got 2\.5$/ },
    { body: { NAME: 'pi', ID: null }, status: 400, message: /body\/ID must be an integer 0\.\.32767 .*got null$/ },
    { body: { NAME: 'pi', ID: true }, status: 400, message: /body\/ID must be an integer 0\.\.32767 .*got true$/ },
    { body: { NAME: 'pi' }, status: 400, message: /required property 'ID'/ },
    { body: { ID: 1 }, status: 400, message: /required property 'NAME'/ },
    { body: { NAME: '', ID: 1 }, status: 400, message: /body\/NAME must NOT have fewer than 1 characters/ },
    { body: { NAME: null, ID: 1 }, status: 400, message: /body\/NAME must be a string, got null/ },
    { body: { NAME: 123, ID: 1 }, status: 400, message: /body\/NAME must be a string, got 123/ },
    { body: { NAME: true, ID: 1 }, status: 400, message: /body\/NAME must be a string, got true/ },
    { body: { NAME: 'x'.repeat(65), ID: 1 }, status: 400, message: /body\/NAME must NOT have more than 64 characters/ },
    { body: [{ NAME: 'pi', ID: 1 }], status: 400, message: /body must be object/ },
    { body: JSON.stringify('not json {'), headers: json, status: 400, message: /body is a string but not a JSON-encoded \{"NAME", "ID"\} object/ },
    { body: JSON.stringify('[1, 2]'), headers: json, status: 400, message: /does not encode a \{"NAME", "ID"\} object/ },
    { body: JSON.stringify(JSON.stringify({ NAME: 'pi', ID: 99999 })), headers: json, status: 400, message: /body\/ID must be <= 32767/ },
    { body: '{"NAME": "pi", "ID": 1', headers: json, status: 400, message: /not valid JSON/ },
    { body: '', headers: json, status: 400, message: /Body cannot be empty/ },
    { body: '{"NAME": "pi", "ID": 1}', headers: { 'content-type': 'text/plain' }, status: 415, message: /unsupported Content-Type "text\/plain"/ },
    {
      body: 'NAME=pi&ID=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      message: /unsupported Content-Type "application\/x-www-form-urlencoded"/
    }
  ]
  for (const { body, headers, status, message } of cases) {
    const res = await keepAlive(app, body, headers)
    assert.equal(res.statusCode, status, `${JSON.stringify(body)}: ${res.body}`)
    const error = res.json() as { statusCode: number, message: string }
    assert.equal(error.statusCode, status)
    assert.match(error.message, message, JSON.stringify(body))
  }
  assert.deepEqual(await liveList(app), [])
  assert.deepEqual(stored(app), { devices: 0, frames: 0 })
})

test('bodies over BODY_LIMIT get 413 on keep_alive and frames, and nothing is stored', async (t) => {
  const app = await buildTestApp(t, { BODY_LIMIT: '2048' })
  const keep = await keepAlive(app, { NAME: 'pi', ID: 1, padding: 'x'.repeat(3000) })
  assert.equal(keep.statusCode, 413)
  assert.match(keep.json().message, /larger than this route.s limit of \d+ bytes/)
  const frames = await postFrames(app, { ID: 1, frames: Array(10).fill(piLine) })
  assert.ok(JSON.stringify({ ID: 1, frames: Array(10).fill(piLine) }).length > 2048)
  assert.equal(frames.statusCode, 413)
  assert.deepEqual(stored(app), { devices: 0, frames: 0 })
  assert.deepEqual(await liveList(app), [])
})

test('with DEVICE_TOKEN set, keep_alive and frames need it (the admin token also passes); the lists stay open', async (t) => {
  const deviceToken = 'pi-shared-secret'
  const app = await buildTestApp(t, { DEVICE_TOKEN: deviceToken })
  const body = { NAME: 'pi', ID: 5 }
  const missing = await keepAlive(app, body)
  assert.equal(missing.statusCode, 401)
  assert.match(missing.json().message, /DEVICE_TOKEN/)
  assert.equal((await keepAlive(app, body, { authorization: 'Bearer wrong-token' })).statusCode, 401)
  assert.equal((await postFrames(app, { ID: 5, frames: [sessionRow] })).statusCode, 401)
  assert.deepEqual(stored(app), { devices: 0, frames: 0 })

  assert.equal((await keepAlive(app, body, { authorization: `Bearer ${deviceToken}` })).statusCode, 200)
  assert.equal((await keepAlive(app, { NAME: 'pi6', ID: 6 }, ADMIN)).statusCode, 200)
  assert.equal((await postFrames(app, { ID: 5, frames: [sessionRow] }, { authorization: `Bearer ${deviceToken}` })).statusCode, 200)
  assert.deepEqual((await liveList(app)).map((d) => d.id), [5, 6])
  assert.equal((await app.inject({ url: '/app/get/known_servers' })).statusCode, 200)
})

test('without DEVICE_TOKEN the device routes are open', async (t) => {
  const app = await buildTestApp(t)
  assert.equal((await keepAlive(app, { NAME: 'pi', ID: 1 })).statusCode, 200)
  assert.equal((await postFrames(app, { ID: 1, frames: [sessionRow] })).statusCode, 200)
})

test('a Pi silent for STALE_AFTER_S drops off the live list and the gauge, but stays known', async (t) => {
  const app = await buildTestApp(t, { STALE_AFTER_S: '0.4' })
  const silentSince = Date.now()
  await keepAlive(app, { NAME: 'quiet', ID: 1 })
  await keepAlive(app, { NAME: 'chatty', ID: 2 })
  assert.deepEqual((await liveList(app)).map((d) => d.id), [1, 2])
  assert.match((await app.inject({ url: '/metrics' })).body, /^doorsense_devices_live 2$/m)
  // 2 keeps talking every 100 ms, 1 falls silent for longer than 0.4 s
  let chattyKeepAlives = 1
  while (Date.now() - silentSince < 550) {
    await sleep(100)
    await keepAlive(app, { NAME: 'chatty', ID: 2 })
    chattyKeepAlives++
  }
  assert.deepEqual((await liveList(app)).map((d) => d.id), [2])
  assert.match((await app.inject({ url: '/metrics' })).body, /^doorsense_devices_live 1$/m)
  const known = (await app.inject({ url: '/app/get/known_servers' })).json() as Array<{ id: number, live: boolean, keepAlives: number }>
  assert.deepEqual(known.map((d) => [d.id, d.live, d.keepAlives]), [[1, false, 1], [2, true, chattyKeepAlives]])
})

test('a restart keeps the known Pis but none is live until its next keep-alive', async (t) => {
  const dataDir = tempDir(t)
  const first = await buildTestApp(t, {}, { dataDir })
  assert.equal((await keepAlive(first, { NAME: 'attic', ID: 11 })).statusCode, 200)
  assert.equal((await postFrames(first, { ID: 11, frames: [piLine] })).statusCode, 200)
  await first.close()
  const second = await buildTestApp(t, {}, { dataDir })
  assert.deepEqual(await liveList(second), [])
  const known = (await second.inject({ url: '/app/get/known_servers' })).json() as Array<{ id: number, name: string, live: boolean }>
  assert.deepEqual(known.map((d) => [d.id, d.name, d.live]), [[11, 'attic', false]])
  assert.deepEqual(stored(second), { devices: 1, frames: 1 })
  await keepAlive(second, { NAME: 'attic', ID: 11 })
  assert.deepEqual((await liveList(second)).map((d) => d.id), [11])
})

test('frames in every encoding are stored (raw ones as received, the others as decoded features), bad ones are reported by index', async (t) => {
  const app = await buildTestApp(t)
  const frames = [sessionRow, `[${sessionRow.join(', ')}]`, piLine, esp32Line, [1, 2, 3], null, 'hello']
  const res = await postFrames(app, { ID: 21, frames })
  assert.equal(res.statusCode, 200, res.body)
  const receipt = res.json() as { accepted: number, rejected: Array<{ index: number, reason: string }>, labelled: number }
  assert.equal(receipt.accepted, 4)
  assert.equal(receipt.labelled, 0, 'no capture session is open')
  assert.deepEqual(receipt.rejected.map((r) => r.index), [4, 5, 6])
  assert.match(receipt.rejected[0].reason, /got 3$/)
  assert.match(receipt.rejected[1].reason, /missing/)
  assert.match(receipt.rejected[2].reason, /not a finite number \(got "hello"\)/)

  const rows = app.storage.db
    .prepare('SELECT device, encoding, features, layout FROM rpi_frames ORDER BY id')
    .all() as Array<{ device: number, encoding: string, features: Buffer, layout: number }>
  assert.deepEqual(rows.map((r) => [r.device, r.encoding, r.layout]), [[21, 'features', 0], [21, 'features', 0], [21, 'raw-pi', 1], [21, 'raw-esp32', 1]])
  // features as 106 float32; a raw Pi frame's 108 values and an ESP32 buffer's 128 as one signed byte each
  assert.deepEqual(rows.map((r) => r.features.length), [106 * 4, 106 * 4, 108, 128])
  assert.deepEqual(Array.from(new Int8Array(Uint8Array.from(rows[2].features).buffer)), JSON.parse(piLine))
  rows.forEach((row, i) => assert.deepEqual(storedFrame(row.layout, row.features).features, parseFrame(frames[i]), `frame ${i} reads back as decoded`))
})

test('frames are counted per device in GET /metrics', async (t) => {
  const app = await buildTestApp(t)
  await postFrames(app, { ID: 3, frames: [sessionRow, piLine, 'bad'] })
  await postFrames(app, { ID: 3, frames: [esp32Line] })
  await postFrames(app, { ID: 4, frames: [piLine] })
  const metrics = (await app.inject({ url: '/metrics' })).body
  assert.match(metrics, /^doorsense_frames_received_total\{device="3"\} 3$/m)
  assert.match(metrics, /^doorsense_frames_received_total\{device="4"\} 1$/m)
  assert.match(metrics, /^doorsense_frames_rejected_total\{device="3"\} 1$/m)
})

test('a batch whose every frame is bad gets 400 DS_BAD_FRAME naming the problems, and nothing is stored', async (t) => {
  const app = await buildTestApp(t)
  const res = await postFrames(app, { ID: 3, frames: [[1, 2], 'NaN', Array(106).fill(Number.MAX_VALUE)] })
  assert.equal(res.statusCode, 400)
  const error = res.json() as { code: string, message: string }
  assert.equal(error.code, 'DS_BAD_FRAME')
  assert.match(error.message, new RegExp(
    String.raw`^all 3 frames were rejected, nothing stored: frames\[0\]: .*got 2; frames\[1\]: .*"NaN".*; ` +
    String.raw`frames\[2\]: .*CH6_mag is 1\.79\d*e\+308: magnitudes lie in 0\.\.182$`
  ))
  assert.deepEqual(stored(app), { devices: 0, frames: 0 })
  assert.doesNotMatch((await app.inject({ url: '/metrics' })).body, /^doorsense_frames_received_total\{/m)
})

test('frames refuses bad request bodies with a 400 naming the field, and stores nothing', async (t) => {
  const app = await buildTestApp(t)
  const cases: Array<{ body: unknown, message: RegExp }> = [
    { body: { ID: 'abc', frames: [sessionRow] }, message: /body\/ID must be an integer 0\.\.32767 .*got "abc"$/ },
    { body: { ID: 40000, frames: [sessionRow] }, message: /body\/ID must be <= 32767/ },
    { body: { ID: null, frames: [sessionRow] }, message: /body\/ID must be an integer 0\.\.32767 .*got null$/ },
    { body: { frames: [sessionRow] }, message: /required property 'ID'/ },
    { body: { ID: 1 }, message: /required property 'frames'/ },
    { body: { ID: 1, frames: [] }, message: /body\/frames must NOT have fewer than 1 items/ },
    { body: { ID: 1, frames: Array(4097).fill(0) }, message: /body\/frames must NOT have more than 4096 items/ }
  ]
  for (const { body, message } of cases) {
    const res = await postFrames(app, body)
    assert.equal(res.statusCode, 400, res.body)
    assert.match(res.json().message, message)
  }
  const malformed = await app.inject({
    method: 'POST',
    url: '/server/post/frames',
    headers: { 'content-type': 'application/json' },
    payload: '{"ID": 1, "frames": [[1,2'
  })
  assert.equal(malformed.statusCode, 400)
  const text = await app.inject({
    method: 'POST',
    url: '/server/post/frames',
    headers: { 'content-type': 'text/plain' },
    payload: JSON.stringify({ ID: 1, frames: [sessionRow] })
  })
  assert.equal(text.statusCode, 415)
  assert.deepEqual(stored(app), { devices: 0, frames: 0 })
})

test('the routes are in the OpenAPI document', async (t) => {
  const app = await buildTestApp(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> }
  for (const [path, method] of [
    ['/server/post/keep_alive', 'post'],
    ['/server/post/frames', 'post'],
    ['/app/get/list_of_servers', 'get'],
    ['/app/get/known_servers', 'get']
  ]) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`)
  }
})
