/**
 * A database at its STORAGE_MAX_MB cap (a real SQLite file, max_page_count)
 * does not lock the Pis out: one Pi filling it makes new frames drop the
 * oldest unlabelled ones, so every other Pi is still accepted and its door
 * keeps moving, while labelled samples (an import, a capture) all stay.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { App } from '../../../core/app.js'
import { FrameStore } from '../../../plugins/rpi-servers/frame-store.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { Storage } from '../../../core/storage.js'
import { rawPiFrames } from '../../fixtures/frames.js'
import { sessionCsv, sessionRows, sessionSlice, trainThrough } from '../../fixtures/training.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'

const FILLER = 7
const OTHER = 8
const BATCH = 300

/** A batch as the agent sends it: with an Idempotency-Key. */
async function postFrames (app: App, device: number, frames: readonly unknown[]) {
  return app.inject({ method: 'POST', url: '/server/post/frames', headers: { 'idempotency-key': randomUUID() }, payload: { ID: device, frames } })
}

function count (app: App, sql: string): number {
  return (app.storage.db.prepare(sql).get() as { n: number }).n
}

/** Every labelled sample, as rows: what must not change while frames are dropped. */
function samples (app: App): unknown[] {
  return app.storage.db.prepare('SELECT id, angle, source, device, features FROM training_samples ORDER BY id').all()
}

test('a full database drops the oldest unlabelled frames for new ones: a second Pi is accepted and its door moves, labelled samples all stay', async (t) => {
  const app = await buildTestApp(t, { STORAGE_MAX_MB: '1' })
  await trainThrough(app, 20) // a model, so that a door has a state to move
  const imported = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(12))
  })
  assert.equal(imported.statusCode, 200, imported.body)

  // one Pi posts ~4 times what the cap holds
  const filler = rawPiFrames().slice(0, BATCH)
  let firstBatchLastId = 0
  for (let batch = 0; batch < 30; batch++) {
    const response = await postFrames(app, FILLER, filler)
    assert.equal(response.statusCode, 200, `batch ${batch} of device ${FILLER}: ${response.body}`)
    if (batch === 0) firstBatchLastId = count(app, 'SELECT MAX(id) AS n FROM rpi_frames')
  }
  const stored = count(app, 'SELECT COUNT(*) AS n FROM rpi_frames')
  assert.ok(stored < 30 * BATCH / 2, `the cap holds ${stored} of the ${30 * BATCH} frames posted`)
  assert.ok(count(app, 'SELECT MIN(id) AS n FROM rpi_frames') > firstBatchLastId, 'the oldest frames went first')
  assert.equal(count(app, `SELECT COUNT(*) AS n FROM rpi_frames WHERE id > (SELECT MAX(id) - ${BATCH} FROM rpi_frames)`), BATCH,
    'the newest batch is all there')
  assert.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^doorsense_frames_dropped_total [1-9]\d*$/m)

  // a capture on the other Pi while it is full: its labelled copies are stored, and stay
  assert.equal((await app.inject({
    method: 'POST',
    url: '/training/post/capture',
    headers: ADMIN,
    payload: { ID: OTHER, angle: 90, seconds: 60 }
  })).statusCode, 200)
  const open = sessionRows().filter((row) => row.angle === 90).map((row) => Array.from(row.features))
  const captured = await postFrames(app, OTHER, open.slice(0, 100))
  assert.equal(captured.statusCode, 200, captured.body)
  assert.equal(captured.json().labelled, 100)
  assert.equal((await app.inject({ method: 'POST', url: '/training/post/cancel_capture', headers: ADMIN, payload: { ID: OTHER } })).statusCode, 200)
  const labelled = samples(app)
  assert.equal(labelled.length, 84 + 100)

  // the first Pi goes on filling; the other Pi's frames are still taken, and move its door every time
  let lastFrameAt: string | null = null
  for (let batch = 0; batch < 5; batch++) {
    assert.equal((await postFrames(app, FILLER, filler)).statusCode, 200)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const response = await postFrames(app, OTHER, open.slice(100 + batch * 50, 150 + batch * 50))
    assert.equal(response.statusCode, 200, `batch ${batch} of device ${OTHER}: ${response.body}`)
    assert.equal(response.json().accepted, 50)
    const door = (await app.inject({ method: 'GET', url: `/doors/${OTHER}` })).json()
    assert.notEqual(door.lastFrameAt, lastFrameAt, 'the door took the batch in')
    assert.notEqual(door.state, 'unknown', JSON.stringify(door))
    assert.equal(door.live, true)
    lastFrameAt = door.lastFrameAt
  }
  assert.deepEqual(samples(app), labelled, 'no labelled sample was dropped')
})

test('makeRoom drops only as many of the oldest frames as the room asked for needs, and nothing when there is room', (t) => {
  const dir = tempDir(t)
  const storage = new Storage(dir, { maxMb: 1 })
  t.after(() => storage.close())
  storage.migrate(RPI_SERVERS_SCHEMA)
  const store = new FrameStore(storage.db)
  const frame = { features: new Float32Array(106).fill(1), encoding: 'features' as const }
  for (let i = 0; i < 20; i++) store.insert(i, Array.from({ length: 50 }, () => frame), i, () => undefined)
  assert.equal(store.dropped, 0, 'nothing dropped while the batches fitted')
  assert.equal(store.makeRoom(0), 0)
  const before = store.count()
  const room = storage.roomBytes()
  const dropped = store.makeRoom(room + 100 * 1024)
  assert.ok(dropped > 0 && dropped < before, `${dropped} of ${before} dropped`)
  assert.ok(storage.roomBytes() >= room + 100 * 1024)
  // oldest first: device 0's frames went before device 19's
  assert.equal(store.count(0), 0)
  assert.equal(store.count(19), 50)
})
