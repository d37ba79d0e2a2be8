import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Storage } from '../../../core/storage.js'
import { SampleStore } from '../../../ml/sample-store.js'
import { FrameRetention } from '../../../plugins/rpi-servers/frame-retention.js'
import { FrameStore, type DecodedFrame } from '../../../plugins/rpi-servers/frame-store.js'
import { RPI_SERVERS_MIGRATIONS, STORAGE_AREA } from '../../../plugins/rpi-servers/migrations.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'

const HOUR = 3_600_000
const frame = (value: number): DecodedFrame => ({ features: new Float32Array(106).fill(value), encoding: 'features' })

test('retention deletes frames past the window and past the per-device cap in bounded batches; labelled samples stay', (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  storage.migrate(STORAGE_AREA, RPI_SERVERS_MIGRATIONS)
  const frames = new FrameStore(storage.db)
  const samples = new SampleStore(storage)
  const now = Date.UTC(2026, 0, 2)
  // device 1: 30 frames two days old, 10 fresh; device 2: 25 fresh
  frames.insert(1, Array.from({ length: 30 }, (_, i) => frame(i)), now - 48 * HOUR, () => 0)
  frames.insert(1, Array.from({ length: 10 }, (_, i) => frame(i)), now - HOUR, () => 0)
  frames.insert(2, Array.from({ length: 25 }, (_, i) => frame(i)), now - HOUR, () => 0)
  samples.insert(Array.from({ length: 12 }, () => ({ kind: 'csi' as const, angle: 0, features: new Float32Array(106), device: 1, source: 'frames' as const })), new Date(now - 72 * HOUR))

  const retention = new FrameRetention(frames, { hours: 24, perDevice: 20, batch: 7, batchesPerPass: 2, now: () => now })
  // a pass stops after batchesPerPass batches, so one pass never holds the database for long
  assert.equal(retention.pass(), 14)
  assert.equal(frames.count(1), 26)
  while (retention.pass() > 0) { /* the rest, pass by pass */ }
  assert.equal(frames.count(1), 10, 'the old frames are gone, the fresh ones kept')
  assert.equal(frames.count(2), 20, 'device 2 is cut to its cap, oldest first')
  assert.deepEqual(frames.list(2).map((row) => row.features[0]), Array.from({ length: 20 }, (_, i) => i + 5))
  assert.equal(retention.deleted, 35)
  assert.equal(samples.count('csi'), 12, 'labelled samples are never pruned, however old')
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
