/**
 * Compressed request bodies (core/content-encoding.ts): gzip, deflate and br
 * bodies read as the same bodies plain, the body limit held on the decoded
 * bytes, codings the server does not apply and broken streams refused with
 * nothing stored.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import type { App } from '../../core/app.js'
import { buildTestApp } from '../helper.js'
import { binaryBatch, rawPiLines } from '../fixtures/frames.js'

const piBytes = binaryBatch(rawPiLines().slice(0, 100))

const postFrames = (app: App, body: Buffer, headers: Record<string, string>, query = '?ID=1&layout=pi108') =>
  app.inject({ method: 'POST', url: `/server/post/frames${query}`, headers: { 'content-type': 'application/octet-stream', ...headers }, payload: body })

function storedFeatures (app: App, device: number): Buffer[] {
  const rows = app.storage.db.prepare('SELECT features FROM rpi_frames WHERE device = ? ORDER BY id').all(device) as Array<{ features: Buffer }>
  return rows.map((row) => row.features)
}

test('gzip, deflate and br batches store exactly what the same batch plain stores, and body answers announce the codings', async (t) => {
  const app = await buildTestApp(t)
  assert.equal(piBytes.length, 100 * 108)
  const plain = await postFrames(app, piBytes, {}, '?ID=1&layout=pi108')
  const gzipped = await postFrames(app, gzipSync(piBytes), { 'content-encoding': 'gzip' }, '?ID=2&layout=pi108')
  const deflated = await postFrames(app, deflateSync(piBytes), { 'content-encoding': 'Deflate' }, '?ID=3&layout=pi108')
  const brotli = await postFrames(app, brotliCompressSync(piBytes), { 'content-encoding': 'br' }, '?ID=5&layout=pi108')
  for (const answer of [plain, gzipped, deflated, brotli]) {
    assert.equal(answer.statusCode, 200, answer.body)
    assert.equal(answer.json().accepted, 100)
    assert.equal(answer.headers['accept-encoding'], 'gzip, deflate, br')
  }
  assert.ok(gzipSync(piBytes).length < 0.6 * piBytes.length, 'the recorded frames compress')
  assert.equal(storedFeatures(app, 1).length, 100)
  assert.deepEqual(storedFeatures(app, 2), storedFeatures(app, 1))
  assert.deepEqual(storedFeatures(app, 3), storedFeatures(app, 1))
  assert.deepEqual(storedFeatures(app, 5), storedFeatures(app, 1))

  const json = await app.inject({
    method: 'POST',
    url: '/server/post/keep_alive',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: gzipSync(JSON.stringify({ NAME: 'pi-gz', ID: 4 }))
  })
  assert.equal(json.statusCode, 200, json.body)
  const listed = (await app.inject({ url: '/app/get/list_of_servers' })).json<Array<{ id: number, name: string }>>()
  assert.equal(listed.find(({ id }) => id === 4)?.name, 'pi-gz')
  const get = await app.inject({ url: '/debug/get/exists' })
  assert.equal(get.headers['accept-encoding'], undefined, 'a route without a body announces nothing')
})

test('a retry compressed differently is the same request under its Idempotency-Key', async (t) => {
  const app = await buildTestApp(t)
  const key = { 'idempotency-key': 'batch-gz-1' }
  const first = await postFrames(app, piBytes, key)
  const again = await postFrames(app, gzipSync(piBytes), { ...key, 'content-encoding': 'gzip' })
  assert.equal(first.statusCode, 200, first.body)
  assert.equal(again.statusCode, 200, again.body)
  assert.equal(again.headers['idempotent-replayed'], 'true')
  assert.equal(storedFeatures(app, 1).length, 100, 'stored once')
})

test('a coding not applied here is a 415, a broken stream a 400, nothing stored', async (t) => {
  const app = await buildTestApp(t)
  const unknownCoding = /^Content-Encoding zstd: bodies here may be sent as gzip, deflate, br, or plain$/
  const notGzip = /^the body is not valid gzip \(Content-Encoding: gzip\): incorrect header check/
  const cases = [
    { headers: { 'content-encoding': 'zstd' }, body: piBytes, status: 415, message: unknownCoding },
    { headers: { 'content-encoding': 'gzip, deflate' }, body: deflateSync(gzipSync(piBytes)), status: 415, message: /Content-Encoding gzip, deflate/ },
    { headers: { 'content-encoding': 'gzip' }, body: piBytes, status: 400, message: notGzip },
    { headers: { 'content-encoding': 'deflate' }, body: gzipSync(piBytes), status: 400, message: /^the body is not valid deflate/ },
    { headers: { 'content-encoding': 'gzip' }, body: gzipSync(piBytes).subarray(0, 200), status: 400, message: /unexpected end of file/ }
  ]
  for (const { headers, body, status, message } of cases) {
    const answer = await postFrames(app, body, headers)
    assert.equal(answer.statusCode, status, `${JSON.stringify(headers)}: ${answer.body}`)
    assert.match(answer.json().message, message)
  }
  assert.equal(storedFeatures(app, 1).length, 0)
})

test('the body limit holds on the decoded bytes: a small body that inflates past it is a 413', async (t) => {
  const app = await buildTestApp(t, { BODY_LIMIT: '16384' })
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024))
  assert.ok(bomb.length < 100_000, `${bomb.length} bytes on the wire`)
  const answer = await postFrames(app, bomb, { 'content-encoding': 'gzip' })
  assert.equal(answer.statusCode, 413, answer.body)
  assert.equal(storedFeatures(app, 1).length, 0)
  const under = await postFrames(app, gzipSync(piBytes.subarray(0, 108 * 100)), { 'content-encoding': 'gzip' })
  assert.equal(under.statusCode, 200, 'a body decoding to 10,800 bytes is under the 16 KiB limit')
})
