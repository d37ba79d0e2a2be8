/**
 * POST /server/post/frames with a binary body (application/octet-stream,
 * ?ID=&layout=): the recorded frames stored exactly as their JSON is, bad
 * bodies refused naming what is wrong with nothing stored, retries under an
 * Idempotency-Key, and capture labelling.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { App } from '../../../core/app.js'
import { ADMIN, buildTestApp } from '../../helper.js'
import { binaryBatch, esp32Lines as recordedEsp32Lines, rawPiLines } from '../../fixtures/frames.js'

const piLines = rawPiLines()
const esp32Lines = recordedEsp32Lines()
const OCTETS = { 'content-type': 'application/octet-stream' }

const postBinary = (app: App, query: string, body: Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/server/post/frames${query}`, headers: { ...OCTETS, ...headers }, payload: body })
const postJson = (app: App, body: unknown, headers: Record<string, string> = {}, query = '') =>
  app.inject({ method: 'POST', url: `/server/post/frames${query}`, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) })

/** A device's stored frames, in order: encoding and the features' bytes as stored. */
function storedFrames (app: App, device: number): Array<{ encoding: string, features: Buffer }> {
  const rows = app.storage.db.prepare('SELECT encoding, features FROM rpi_frames WHERE device = ? ORDER BY id').all(device)
  return rows as Array<{ encoding: string, features: Buffer }>
}

function frameCount (app: App): number {
  return (app.storage.db.prepare('SELECT COUNT(*) AS n FROM rpi_frames').get() as { n: number }).n
}

test('binary pi108 and esp128 batches store exactly what the same frames as JSON store', async (t) => {
  const app = await buildTestApp(t)
  const pi = await postBinary(app, '?ID=1&layout=pi108', binaryBatch(piLines))
  assert.equal(pi.statusCode, 200, pi.body)
  assert.deepEqual(pi.json(), { accepted: 319, rejected: [], labelled: 0 })
  assert.equal((await postJson(app, { ID: 2, frames: piLines })).statusCode, 200)
  const esp = await postBinary(app, '?ID=3&layout=esp128', binaryBatch(esp32Lines))
  assert.deepEqual(esp.json(), { accepted: 13, rejected: [], labelled: 0 })
  assert.equal((await postJson(app, { ID: 4, frames: esp32Lines })).statusCode, 200)

  const [binaryPi, jsonPi, binaryEsp, jsonEsp] = [1, 2, 3, 4].map((device) => storedFrames(app, device))
  assert.equal(binaryPi.length, 319)
  assert.deepEqual(binaryPi, jsonPi, 'the same features, byte for byte, and the same encoding (raw-pi)')
  assert.ok(binaryPi.every((frame) => frame.encoding === 'raw-pi'))
  assert.equal(binaryEsp.length, 13)
  assert.deepEqual(binaryEsp, jsonEsp)
  assert.ok(binaryEsp.every((frame) => frame.encoding === 'raw-esp32'))
  const live = (await app.inject({ url: '/app/get/list_of_servers' })).json<Array<{ id: number }>>()
  assert.deepEqual(live.map(({ id }) => id).sort(), [1, 2, 3, 4], 'binary frames imply a keep-alive as JSON ones do')
})

test('the device and layout may come as headers instead; both given must agree', async (t) => {
  const app = await buildTestApp(t)
  const body = binaryBatch(piLines.slice(0, 5))
  const byHeaders = await postBinary(app, '', body, { 'x-device-id': '6', 'x-frame-layout': 'pi108' })
  assert.equal(byHeaders.statusCode, 200, byHeaders.body)
  assert.equal(byHeaders.json().accepted, 5)
  const both = await postBinary(app, '?ID=6&layout=pi108', body, { 'x-device-id': '6', 'x-frame-layout': 'pi108' })
  assert.equal(both.statusCode, 200, both.body)
  const disagree = await postBinary(app, '?ID=6&layout=pi108', body, { 'x-device-id': '7' })
  assert.equal(disagree.statusCode, 400)
  assert.equal(disagree.json().message, '?ID=6 and the X-Device-Id header (7) disagree: give one of them')
  assert.equal(storedFrames(app, 6).length, 10)
  assert.equal(storedFrames(app, 7).length, 0)
})

test('a bad binary batch is a 400 (413 past the body limit) naming what is wrong, and nothing is stored', async (t) => {
  const app = await buildTestApp(t, { BODY_LIMIT: '8192' })
  const five = binaryBatch(piLines.slice(0, 5))
  const cases: Array<{ query: string, body: Buffer, headers?: Record<string, string>, status: number, message: string | RegExp }> = [
    { query: '?ID=1&layout=pi108', body: Buffer.alloc(1000), status: 400, message: 'body of 1000 bytes is 9 pi108 frames of 108 bytes and 28 bytes over' },
    { query: '?ID=1&layout=esp128', body: five, status: 400, message: 'body of 540 bytes is 4 esp128 frames of 128 bytes and 28 bytes over' },
    { query: '?ID=1&layout=pi108', body: Buffer.alloc(0), status: 400, message: 'body is empty: a pi108 batch is 1 or more frames of 108 bytes' },
    { query: '?layout=pi108', body: five, status: 400, message: /needs its device: \?ID=<0\.\.32767> \(or the X-Device-Id header\)$/ },
    { query: '?ID=1', body: five, status: 400, message: /needs its layout: \?layout=pi108 or esp128 \(or the X-Frame-Layout header\)$/ },
    { query: '?ID=1&layout=pi100', body: five, status: 400, message: 'querystring/layout must be one of pi108, esp128, got "pi100"' },
    {
      query: '?ID=1', body: five, headers: { 'x-frame-layout': 'raw' }, status: 400, message: 'headers/x-frame-layout must be one of pi108, esp128, got "raw"'
    },
    { query: '?ID=0x10&layout=pi108', body: five, status: 400, message: /^querystring\/ID must be an integer 0\.\.32767 .*got "0x10"$/ },
    { query: '?ID=40000&layout=pi108', body: five, status: 400, message: 'querystring/ID must be <= 32767, got "40000"' },
    { query: '?ID=1&layout=pi108&frames=5', body: five, status: 400, message: 'querystring has unknown field "frames"; it takes ID, layout' },
    { query: '?ID=1&layout=pi108', body: Buffer.alloc(8192 + 108), status: 413, message: /^request body is larger than this route's limit of 8192 bytes$/ }
  ]
  for (const { query, body, headers, status, message } of cases) {
    const response = await postBinary(app, query, body, headers)
    assert.equal(response.statusCode, status, `${query}: ${response.body}`)
    if (typeof message === 'string') assert.equal(response.json().message, message, query)
    else assert.match(response.json().message, message, query)
  }
  assert.equal(frameCount(app), 0, 'nothing of a refused batch is stored')
  const live = (await app.inject({ url: '/app/get/list_of_servers' })).json<unknown[]>()
  assert.deepEqual(live, [], 'and no refused batch made its device live')
})

test('more frames than one batch may hold is a 400, as the JSON batch\'s limit is', async (t) => {
  const app = await buildTestApp(t, { BODY_LIMIT: String(2 * 1024 * 1024) })
  const tooMany = Buffer.concat(Array.from({ length: 4097 }, (_, i) => binaryBatch([piLines[i % piLines.length]])))
  const response = await postBinary(app, '?ID=1&layout=pi108', tooMany)
  assert.equal(response.statusCode, 400)
  assert.equal(response.json().message, 'body of 442476 bytes holds 4097 pi108 frames, more than the 4096 of one batch')
  const json = await postJson(app, { ID: 1, frames: Array.from({ length: 4097 }, () => piLines[0]) })
  assert.equal(json.statusCode, 400)
  assert.match(json.json().message, /body\/frames must NOT have more than 4096 items/)
  assert.equal((await postBinary(app, '?ID=1&layout=pi108', tooMany.subarray(108))).statusCode, 200, '4,096 frames are one batch')
  assert.equal(frameCount(app), 4096)
})

test('the binary parameters are refused with a JSON body; other routes still refuse octet-stream with 415', async (t) => {
  const app = await buildTestApp(t)
  const withQuery = await postJson(app, { ID: 1, frames: [piLines[0]] }, {}, '?ID=1')
  assert.equal(withQuery.statusCode, 400)
  assert.match(withQuery.json().message, /^\?ID= is for an application\/octet-stream body only: a JSON body gives its ID in the body/)
  const withHeader = await postJson(app, { ID: 1, frames: [piLines[0]] }, { 'x-frame-layout': 'pi108' })
  assert.equal(withHeader.statusCode, 400)
  assert.match(withHeader.json().message, /^X-Frame-Layout is for an application\/octet-stream body only/)
  const keepAlive = await app.inject({ method: 'POST', url: '/server/post/keep_alive', headers: OCTETS, payload: Buffer.from('{"NAME":"pi","ID":1}') })
  assert.equal(keepAlive.statusCode, 415)
  const inference = await app.inject({ method: 'POST', url: '/ml/post/inference', headers: OCTETS, payload: binaryBatch([piLines[0]]) })
  assert.equal(inference.statusCode, 415)
  const text = await app.inject({ method: 'POST', url: '/server/post/frames', headers: { 'content-type': 'text/plain' }, payload: piLines[0] })
  assert.equal(text.statusCode, 415)
  assert.match(text.json().message, /POST \/server\/post\/frames takes application\/json or application\/octet-stream$/)
  const none = await app.inject({ method: 'POST', url: '/server/post/frames' })
  assert.equal(none.statusCode, 400)
  assert.equal(frameCount(app), 0)
})

test('Idempotency-Key: a binary retry replays and stores nothing; the same key with other bytes, another layout or the frames as JSON is a 422', async (t) => {
  const app = await buildTestApp(t)
  const key = { 'idempotency-key': 'batch-0001' }
  const body = binaryBatch(piLines.slice(0, 20))
  const first = await postBinary(app, '?ID=8&layout=pi108', body, key)
  assert.equal(first.statusCode, 200, first.body)
  const retry = await postBinary(app, '?ID=8&layout=pi108', Buffer.from(body), key)
  assert.equal(retry.statusCode, 200)
  assert.equal(retry.headers['idempotent-replayed'], 'true')
  assert.equal(retry.body, first.body)
  const byHeaders = await postBinary(app, '', body, { ...key, 'x-device-id': '8', 'x-frame-layout': 'pi108' })
  assert.equal(byHeaders.headers['idempotent-replayed'], 'true', 'the same request however its parameters are given')
  assert.equal(storedFrames(app, 8).length, 20, 'stored once')

  const otherBytes = await postBinary(app, '?ID=8&layout=pi108', binaryBatch(piLines.slice(1, 21)), key)
  assert.equal(otherBytes.statusCode, 422)
  assert.equal(otherBytes.json().code, 'DS_IDEMPOTENCY_KEY_REUSED')
  // the first 2,048 of the same bytes read as 16 esp128 frames
  const otherLayout = await postBinary(app, '?ID=8&layout=esp128', body.subarray(0, 16 * 128), key)
  assert.equal(otherLayout.statusCode, 422)
  // the same frames as JSON under the same key: another request (JSON and bytes are fingerprinted as sent)
  const asJson = await postJson(app, { ID: 8, frames: piLines.slice(0, 20) }, key)
  assert.equal(asJson.statusCode, 422)
  assert.equal(storedFrames(app, 8).length, 20, 'nothing more stored')
  // the key is scoped to its device, as for JSON
  assert.equal((await postBinary(app, '?ID=9&layout=pi108', body, key)).statusCode, 200)
  assert.equal(storedFrames(app, 9).length, 20)
})

test('an open capture labels a binary batch\'s frames as it labels the same frames as JSON', async (t) => {
  const app = await buildTestApp(t)
  for (const device of [11, 12]) {
    const capture = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: device, angle: 30, seconds: 60 } })
    assert.equal(capture.statusCode, 200, capture.body)
  }
  const binary = await postBinary(app, '?ID=11&layout=pi108', binaryBatch(piLines.slice(0, 40)))
  assert.deepEqual(binary.json(), { accepted: 40, rejected: [], labelled: 40 })
  const json = await postJson(app, { ID: 12, frames: piLines.slice(0, 40) })
  assert.deepEqual(json.json(), { accepted: 40, rejected: [], labelled: 40 })
  const samples = (device: number) => app.storage.db.prepare('SELECT angle, features, source FROM training_samples WHERE device = ? ORDER BY id').all(device)
  assert.equal(samples(11).length, 40)
  assert.deepEqual(samples(11), samples(12), 'the same labelled samples, byte for byte')
})
