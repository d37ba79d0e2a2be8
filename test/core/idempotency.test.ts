/**
 * Idempotency-Key: a retry of a request whose answer was lost gets the first
 * answer and stores nothing — frame batches, samples, CSV imports and batch
 * classification, counted in the SQLite tables themselves (the key store on
 * its own: idempotency-store.test.ts); and the duplicate-import refusal.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../core/app.js'
import { fingerprintOf } from '../../core/idempotency.js'
import type { BatchResponse } from '../../schemas/inference.js'
import type { ImportResult } from '../../schemas/training.js'
import { ADMIN, buildTestApp, tempDir } from '../helper.js'
import { rawPiFrames, stringified } from '../fixtures/frames.js'
import { sessionCsv, sessionSlice, trainThrough } from '../fixtures/training.js'

const REPLAYED = 'idempotent-replayed'

function count (app: App, table: string): number {
  return (app.storage.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
}

function postFrames (app: App, body: unknown, key?: string) {
  return app.inject({ method: 'POST', url: '/server/post/frames', payload: body as object, headers: key === undefined ? {} : { 'idempotency-key': key } })
}

function importCsv (app: App, csv: string, query = '', key?: string) {
  return app.inject({
    method: 'POST',
    url: `/training/post/import${query}`,
    payload: csv,
    headers: { ...ADMIN, 'content-type': 'text/csv', ...(key === undefined ? {} : { 'idempotency-key': key }) }
  })
}

test('fingerprintOf hashes bytes as they are (a binary body), strings as text, anything else as JSON', () => {
  const bytes = Buffer.from([0, 255, 128, 10])
  const sha = (...parts: Array<string | Buffer>) => parts.reduce((hash, part) => hash.update(part).update('\n'), createHash('sha256')).digest('hex')
  assert.equal(fingerprintOf('application/octet-stream', 'pi108', bytes), sha('application/octet-stream', 'pi108', bytes))
  assert.equal(fingerprintOf(new Uint8Array(bytes)), fingerprintOf(bytes), 'a Buffer and a Uint8Array of the same bytes')
  assert.notEqual(fingerprintOf(bytes), fingerprintOf(Buffer.from([0, 255, 128, 11])))
  assert.equal(fingerprintOf({ ID: 7 }), sha('{"ID":7}'))
})

test('frames: a repeat of a keyed batch answers the same and stores nothing; another body under the key is a 422; keys are per device; a bad key is a 400', async (t) => {
  const app = await buildTestApp(t)
  const frames = rawPiFrames().slice(0, 5)
  const key = randomUUID()
  const batch = { ID: 7, frames: [...frames, [1, 2, 3]] }

  const first = await postFrames(app, batch, key)
  assert.equal(first.statusCode, 200, first.body)
  assert.equal(first.headers[REPLAYED], undefined)
  assert.equal(first.json().accepted, 5)
  const again = await postFrames(app, batch, key)
  assert.equal(again.statusCode, 200)
  assert.equal(again.headers[REPLAYED], 'true')
  assert.equal(again.body, first.body, 'the same body, byte for byte')
  assert.equal(count(app, 'rpi_frames'), 5, 'nothing stored by the repeat')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  assert.match(metrics, /doorsense_frames_received_total\{device="7"\} 5\n/)
  assert.match(metrics, /doorsense_idempotent_replays_total\{route="\/server\/post\/frames"\} 1\n/)

  const other = await postFrames(app, { ID: 7, frames: frames.slice(0, 2) }, key)
  assert.equal(other.statusCode, 422)
  assert.equal(other.json().code, 'DS_IDEMPOTENCY_KEY_REUSED')
  assert.match(other.json().message, new RegExp(`Idempotency-Key "${key}" was used \\d+ s ago for a different request on POST /server/post/frames device 7`))
  assert.equal(count(app, 'rpi_frames'), 5)

  // another device may use the same key for its own batch
  const device8 = await postFrames(app, { ID: 8, frames }, key)
  assert.equal(device8.statusCode, 200)
  assert.equal(device8.headers[REPLAYED], undefined)
  assert.equal(count(app, 'rpi_frames'), 10)

  // an error is not recorded: after a 400 the same key may carry the batch
  const badKey = randomUUID()
  assert.equal((await postFrames(app, { ID: 9, frames: [[1, 2, 3]] }, badKey)).statusCode, 400)
  assert.equal((await postFrames(app, { ID: 9, frames }, badKey)).statusCode, 200)
  assert.equal(count(app, 'rpi_frames'), 15)

  for (const malformed of ['', 'has space', 'x'.repeat(129), 'tab\there', 'ünïcode']) {
    const refused = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 7, frames }, headers: { 'idempotency-key': malformed } })
    assert.equal(refused.statusCode, 400, `${JSON.stringify(malformed)}: ${refused.body}`)
    assert.match(refused.json().message, /^headers\/Idempotency-Key must be 1 to 128 visible ASCII characters/)
  }
  assert.equal(count(app, 'rpi_frames'), 15)
  // no key, no change: every post stores
  await postFrames(app, { ID: 7, frames })
  await postFrames(app, { ID: 7, frames })
  assert.equal(count(app, 'rpi_frames'), 25)
})

test('frames and samples: identical keyed requests at once store once', async (t) => {
  const app = await buildTestApp(t)
  const frames = rawPiFrames().slice(0, 3)
  const key = randomUUID()
  const answers = await Promise.all(Array.from({ length: 6 }, () => postFrames(app, { ID: 3, frames }, key)))
  assert.deepEqual(answers.map((answer) => answer.statusCode), Array(6).fill(200))
  assert.equal(answers.filter((answer) => answer.headers[REPLAYED] === 'true').length, 5)
  assert.equal(count(app, 'rpi_frames'), 3)

  const rows = sessionSlice(1)
  const samples = { ID: 4, samples: rows.map((row) => ({ angle: row.angle, frame: stringified(row) })) }
  const post = (body: object, sampleKey: string) => app.inject({
    method: 'POST',
    url: '/training/post/samples',
    payload: body,
    headers: { ...ADMIN, 'idempotency-key': sampleKey }
  })
  const sampleKey = randomUUID()
  const stored = await Promise.all([post(samples, sampleKey), post(samples, sampleKey), post(samples, sampleKey)])
  assert.deepEqual(stored.map((answer) => answer.statusCode), [200, 200, 200])
  assert.deepEqual(stored.map((answer) => answer.json().stored), [7, 7, 7])
  assert.equal(count(app, 'training_samples'), 7)
  const changed = await post({ ...samples, samples: samples.samples.slice(1) }, sampleKey)
  assert.equal(changed.statusCode, 422)
  assert.match(changed.json().message, /for a different request on POST \/training\/post\/samples device 4/)
  assert.equal(count(app, 'training_samples'), 7)
})

test('import: a keyed retry replays; the same content again is a 409 naming the earlier import, unless ?duplicate=allow; a deleted import does not count', async (t) => {
  const app = await buildTestApp(t)
  const csv = sessionCsv(sessionSlice(3))
  const key = randomUUID()
  const first = await importCsv(app, csv, '?ID=3', key)
  assert.equal(first.statusCode, 200, first.body)
  const result = first.json<ImportResult>()
  assert.equal(result.imported, 21)
  assert.match(result.contentSha256, /^[0-9a-f]{64}$/)
  const retry = await importCsv(app, csv, '?ID=3', key)
  assert.equal(retry.statusCode, 200)
  assert.equal(retry.headers[REPLAYED], 'true')
  assert.deepEqual(retry.json(), result)
  assert.equal(count(app, 'training_samples'), 21)

  // the same data with CRLF line endings, a BOM and blank lines is the same content
  const windows = '\uFEFF' + csv.split('\n').join('\r\n') + '\r\n\r\n'
  const duplicate = await importCsv(app, windows, '?ID=3')
  assert.equal(duplicate.statusCode, 409)
  assert.equal(duplicate.json().code, 'DS_DUPLICATE_IMPORT')
  assert.match(duplicate.json().message, new RegExp(
    `^this CSV \\(sha256 ${result.contentSha256.slice(0, 12)}…\\) was imported for device 3 already: ` +
    `import ${result.importId} at \\d{4}-\\d\\d-\\d\\dT[^,]+, 21 rows; nothing imported ` +
    '\\(to import the same content again on purpose, add \\?duplicate=allow\\)$'
  ))
  assert.equal(count(app, 'training_samples'), 21)
  // another device, or no device, is another import
  assert.equal((await importCsv(app, csv)).statusCode, 200)
  assert.equal(count(app, 'training_samples'), 42)

  const allowed = await importCsv(app, csv, '?ID=3&duplicate=allow')
  assert.equal(allowed.statusCode, 200, allowed.body)
  assert.ok(allowed.json<ImportResult>().importId > result.importId)
  assert.equal(count(app, 'training_samples'), 63)
  assert.equal(count(app, 'training_imports'), 3)
  // the key named the refusing request: the same key with the override is another request
  assert.equal((await importCsv(app, csv, '?ID=3&duplicate=allow', key)).statusCode, 422)

  // once its samples are deleted, an import is no reason to refuse the file
  const deleted = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { device: 3 } })
  assert.equal(deleted.json().deleted, 42)
  assert.equal((await importCsv(app, csv, '?ID=3')).statusCode, 200)
  assert.equal(count(app, 'training_samples'), 42)
  assert.equal((await importCsv(app, csv, '?ID=3&duplicate=sometimes')).statusCode, 400)
})

test('import: two identical keyed imports at once store once', async (t) => {
  const app = await buildTestApp(t)
  const csv = sessionCsv(sessionSlice(20))
  const key = randomUUID()
  const [a, b] = await Promise.all([importCsv(app, csv, '?ID=1', key), importCsv(app, csv, '?ID=1', key)])
  assert.deepEqual([a.statusCode, b.statusCode], [200, 200], a.body + b.body)
  assert.deepEqual(a.json(), b.json())
  assert.equal([a, b].filter((answer) => answer.headers[REPLAYED] === 'true').length, 1)
  assert.equal(count(app, 'training_samples'), 140)
})

test('a key survives a restart on the same DATA_DIR', async (t) => {
  const dataDir = tempDir(t)
  const frames = rawPiFrames().slice(0, 4)
  const key = randomUUID()
  const before = await buildTestApp(t, {}, { dataDir })
  const first = await postFrames(before, { ID: 2, frames }, key)
  assert.equal(first.statusCode, 200)
  await before.close()

  const after = await buildTestApp(t, {}, { dataDir })
  const again = await postFrames(after, { ID: 2, frames }, key)
  assert.equal(again.statusCode, 200)
  assert.equal(again.headers[REPLAYED], 'true')
  assert.equal(again.body, first.body)
  assert.equal(count(after, 'rpi_frames'), 4)
})

test('a key is forgotten after IDEMPOTENCY_WINDOW_HOURS, and pruned', async (t) => {
  // 0.0002 h = 720 ms
  const app = await buildTestApp(t, { IDEMPOTENCY_WINDOW_HOURS: '0.0002' })
  const frames = rawPiFrames().slice(0, 2)
  const key = randomUUID()
  assert.equal((await postFrames(app, { ID: 1, frames }, key)).headers[REPLAYED], undefined)
  assert.equal((await postFrames(app, { ID: 1, frames }, key)).headers[REPLAYED], 'true')
  assert.equal(count(app, 'rpi_frames'), 2)
  await sleep(800)
  const later = await postFrames(app, { ID: 1, frames }, key)
  assert.equal(later.statusCode, 200)
  assert.equal(later.headers[REPLAYED], undefined, 'a new request now')
  assert.equal(count(app, 'rpi_frames'), 4)
  await sleep(800)
  assert.equal(await app.idempotency.prune(), 1)
  assert.equal(count(app, 'idempotency_keys'), 0)
})

test('batch: under a key the frames are captured once, even while no model answers; with a model the retry replays the classification', async (t) => {
  const app = await buildTestApp(t)
  const rows = sessionSlice(3, 40)
  const capture = await app.inject({ method: 'POST', url: '/training/post/capture', headers: ADMIN, payload: { ID: 5, angle: 30, seconds: 60 } })
  assert.equal(capture.statusCode, 200, capture.body)
  const batch = { ID: 5, frames: rows.slice(0, 4).map(stringified) }
  const post = (key: string, body: object = batch) => app.inject({ method: 'POST', url: '/ml/post/batch', payload: body, headers: { 'idempotency-key': key } })

  // no model: 503, but the frames were captured; the retry (503 is retried) captures nothing more
  const key = randomUUID()
  for (let attempt = 0; attempt < 2; attempt++) {
    const refused = await post(key)
    assert.equal(refused.statusCode, 503)
    assert.match(refused.json().message, /the 4 frame\(s\) were stored as labelled samples/)
    assert.equal(count(app, 'training_samples'), 4, `attempt ${attempt}`)
  }

  await trainThrough(app, 20, { epochs: 2 })
  // the same request once a model is there: classified, the capture of the first attempt reported, still nothing stored again
  const answered = await post(key)
  assert.equal(answered.statusCode, 200, answered.body)
  assert.equal(answered.json<BatchResponse>().captured, 4)
  assert.equal(count(app, 'training_samples'), 4)
  const replayed = await post(key)
  assert.equal(replayed.headers[REPLAYED], 'true')
  assert.equal(replayed.body, answered.body)

  // a fresh key: captured and classified once, concurrent repeats wait for it and replay
  const fresh = randomUUID()
  const answers = await Promise.all([post(fresh), post(fresh), post(fresh)])
  assert.deepEqual(answers.map((answer) => answer.statusCode), [200, 200, 200])
  assert.equal(new Set(answers.map((answer) => answer.body)).size, 1)
  assert.equal(answers.filter((answer) => answer.headers[REPLAYED] === 'true').length, 2)
  assert.equal(count(app, 'training_samples'), 8, 'captured once more')
})

test('many keyed full batches keep the key table under IDEMPOTENCY_MAX_MB, and a batch retry replays its classification without keeping it', async (t) => {
  const app = await buildTestApp(t, { IDEMPOTENCY_MAX_MB: '1' })
  await trainThrough(app, 20, { epochs: 2 })
  const frames = sessionSlice(60).map(stringified)
  const post = (key: string) => app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 3, frames }, headers: { 'idempotency-key': key } })
  const first = await post('batch-0')
  assert.equal(first.statusCode, 200, first.body)
  const replay = await post('batch-0')
  assert.equal(replay.headers[REPLAYED], 'true')
  assert.equal(replay.body, first.body, 'rebuilt byte for byte while the model is the same')
  const answerBytes = (app.storage.db.prepare('SELECT MAX(length(answer)) AS n FROM idempotency_keys').get() as { n: number }).n
  assert.ok(answerBytes < 100, `a batch keeps a digest, ${answerBytes} bytes, not its ${first.body.length}-byte answer`)

  // frames routes keep their answers: 300 keyed posts of 60 frames with rejected frames make large ones
  const bad = Array.from({ length: 60 }, (_, i) => `not a frame ${i}`.padEnd(200, 'x'))
  for (let i = 0; i < 300; i++) {
    const answer = await app.inject({
      method: 'POST',
      url: '/server/post/frames',
      payload: { ID: 4, frames: [...bad, rawPiFrames()[0]] },
      headers: { 'idempotency-key': `frames-${i}` }
    })
    assert.equal(answer.statusCode, 200, answer.body)
  }
  await app.idempotency.prune()
  const stored = (app.storage.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM idempotency_keys').get() as { n: number }).n
  assert.ok(stored <= 1024 * 1024, `the key table holds ${stored} bytes, under 1 MiB`)
  const left = await app.idempotency.store.count()
  assert.ok(left < 300, `keys were forgotten: ${left} left`)
})
