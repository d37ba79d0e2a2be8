import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Storage } from '../../../core/storage.js'
import { SqliteSampleStore } from '../../../ml/store/sample-store.js'
import { FrameRetention, batchRows, pauseAfterMs } from '../../../plugins/rpi-servers/frame-retention.js'
import { FrameStore, type DecodedFrame } from '../../../plugins/rpi-servers/frame-store.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'

const HOUR = 3_600_000
const frame = (value: number): DecodedFrame => ({ features: new Float32Array(106).fill(value), encoding: 'features' })

test('retention deletes frames past the window and past the per-device cap in bounded batches; labelled samples stay', async (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  storage.migrate(RPI_SERVERS_SCHEMA)
  const frames = new FrameStore(storage.db)
  const samples = new SqliteSampleStore(storage)
  const now = Date.UTC(2026, 0, 2)
  // device 1: 30 frames two days old, 10 fresh; device 2: 25 fresh
  frames.insert(1, Array.from({ length: 30 }, (_, i) => frame(i)), now - 48 * HOUR, () => 0)
  frames.insert(1, Array.from({ length: 10 }, (_, i) => frame(i)), now - HOUR, () => 0)
  frames.insert(2, Array.from({ length: 25 }, (_, i) => frame(i)), now - HOUR, () => 0)
  await samples.insert(
    Array.from({ length: 12 }, () => ({ kind: 'csi' as const, angle: 0, features: new Float32Array(106), device: 1, source: 'frames' as const })),
    new Date(now - 72 * HOUR)
  )

  const retention = new FrameRetention(frames, { hours: 24, perDevice: 20, batch: 7, minBatch: 7, maxBatch: 7, now: () => now })
  // one batch deletes at most its size, old frames first, so one never holds the database for long
  assert.equal(retention.step(), 7)
  assert.equal(frames.count(1), 33)
  assert.ok(retention.running, 'a full batch leaves the round open')
  while (retention.running) retention.step()
  assert.equal(retention.rounds, 1)
  assert.equal(frames.count(1), 10, 'the old frames are gone, the fresh ones kept')
  assert.equal(frames.count(2), 20, 'device 2 is cut to its cap, oldest first')
  assert.deepEqual(frames.list(2).map((row) => row.features[0]), Array.from({ length: 20 }, (_, i) => i + 5))
  assert.equal(retention.deleted, 35)
  assert.equal(await samples.count('csi'), 12, 'labelled samples are never pruned, however old')
})

test('the database size is a gauge, and FRAME_RETENTION_HOURS is validated with the rest of the config', async (t) => {
  const app = await buildTestApp(t)
  const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })
  const size = /^doorsense_database_bytes (\d+)$/m.exec(metrics.body)
  assert.ok(size, 'doorsense_database_bytes is exported')
  assert.ok(Number(size[1]) > 4096, `a migrated database has pages (got ${size[1]})`)
  assert.match(metrics.body, /^doorsense_frames_pruned_total 0$/m)
  await assert.rejects(buildTestApp(t, { FRAME_RETENTION_HOURS: '-1' }), /FRAME_RETENTION_HOURS must be >= 0/)
})

test('a backlog of any size drains in one round, in batches held to a share of the main thread, other work going on between them', async (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  storage.migrate(RPI_SERVERS_SCHEMA)
  const frames = new FrameStore(storage.db)
  const now = Date.UTC(2026, 0, 2)
  // 60 s of a 50-Pi building at 20 frames/s, all past the window: under the old pruner (20,000 rows per 30 s) three intervals' worth
  const BACKLOG = 60_000
  for (let done = 0; done < BACKLOG; done += 5000) {
    frames.insert(1 + (done / 5000) % 50, Array.from({ length: 5000 }, (_, i) => frame(i)), now - 48 * HOUR, () => 0)
  }
  frames.insert(99, Array.from({ length: 100 }, (_, i) => frame(i)), now - HOUR, () => 0)
  // an interval far longer than the test: the whole backlog must go in the round start() begins
  const SHARE = 0.5
  const retention = new FrameRetention(frames, {
    hours: 24,
    perDevice: 0,
    batch: 1000,
    minBatch: 500,
    maxBatch: 5000,
    batchBudgetMs: 2,
    share: SHARE,
    intervalMs: 3_600_000,
    now: () => now
  })
  t.after(() => retention.stop())
  let otherTurns = 0
  let ticking = true
  const tick = (): void => { if (ticking) { otherTurns++; setImmediate(tick) } }
  setImmediate(tick)
  const started = performance.now()
  retention.start()
  while (retention.rounds === 0) await new Promise((resolve) => setImmediate(resolve))
  const wallMs = performance.now() - started
  ticking = false
  assert.equal(frames.count(), 100, 'every old frame is gone, the fresh ones kept')
  assert.equal(retention.deleted, BACKLOG)
  assert.ok(retention.batches >= BACKLOG / 5000, `batches stay within maxBatch (${retention.batches} batches)`)
  assert.ok(otherTurns >= retention.batches - 1, `other work ran between the batches (${otherTurns} turns for ${retention.batches} batches)`)
  // each pause is (1 - share) / share of the batch before it, and a timer never fires early by more than its rounding
  assert.ok(retention.busyMs <= SHARE * wallMs + retention.batches, `batches took ${retention.busyMs.toFixed(0)} of ${wallMs.toFixed(0)} ms`)
})

test('the pause after a batch holds the pruner to its share; a batch\'s rows follow the measured delete rate', () => {
  assert.equal(pauseAfterMs(10, 0.25), 30, '10 ms of deletes, then 30 ms of anything else')
  assert.equal(pauseAfterMs(10, 0.5), 10)
  assert.equal(batchRows(30, 10, 100, 50_000), 300, '30 rows/ms for 10 ms')
  assert.equal(batchRows(30, 1, 100, 50_000), 100, 'never below minBatch')
  assert.equal(batchRows(5000, 50, 100, 50_000), 50_000, 'never above maxBatch')
})

test('retention in the server keeps up with a building of Pis: frames past the window go at once, not 20,000 per 30 s', async (t) => {
  const dataDir = tempDir(t)
  {
    const storage = new Storage(dataDir)
    storage.migrate(RPI_SERVERS_SCHEMA)
    const frames = new FrameStore(storage.db)
    for (let done = 0; done < 40_000; done += 5000) {
      frames.insert(1 + done / 5000, Array.from({ length: 5000 }, (_, i) => frame(i)), Date.now() - 48 * HOUR, () => 0)
    }
    storage.close()
  }
  const app = await buildTestApp(t, {}, { dataDir })
  const deadline = Date.now() + 30_000
  let pruned = 0
  while (Date.now() < deadline) {
    const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })
    pruned = Number(/^doorsense_frames_pruned_total (\d+)$/m.exec(metrics.body)?.[1])
    if (pruned === 40_000) break
    // requests are answered while the round runs (inject alone never leaves the microtask queue: wait a turn too)
    assert.equal((await app.inject({ method: 'GET', url: '/debug/get/exists' })).statusCode, 200)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  assert.equal(pruned, 40_000, 'the round that starts with the server deleted the whole backlog')
})
