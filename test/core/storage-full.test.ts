/**
 * Storage full: a real SQLite file capped with STORAGE_MAX_MB (max_page_count),
 * filled with labelled samples until it refuses (frames would make their room
 * by dropping older frames: test/plugins/rpi-servers/frame-store-full.test.ts).
 * Every write route then answers 507 DS_STORAGE_FULL and stores nothing of its
 * request, the reads keep answering, and writing resumes once there is room again.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { App } from '../../core/app.js'
import { STORAGE_FULL_MESSAGE } from '../../core/errors.js'
import { FrameStore } from '../../plugins/rpi-servers/frame-store.js'
import { FrameRetention } from '../../plugins/rpi-servers/frame-retention.js'
import { RPI_SERVERS_SCHEMA } from '../../plugins/rpi-servers/rpi-servers-schema.js'
import { Storage } from '../../core/storage.js'
import { rawPiFrames, stringified } from '../fixtures/frames.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'
import { ADMIN, buildTestApp, tempDir } from '../helper.js'

const DEVICE = 7
const BATCH = 300

/** Rows in the tables the write routes fill. */
function rowCounts (app: App): { frames: number, samples: number, trainings: number } {
  const count = (table: string) => (app.storage.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  return { frames: count('rpi_frames'), samples: count('training_samples'), trainings: count('model_trainings') }
}

function postFrames (app: App, frames: readonly unknown[]) {
  return app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: DEVICE, frames } })
}

/** Samples of session A rows `skip..skip+perLabel` of each angle, as POST /training/post/samples takes them. */
function postSamples (app: App, perLabel: number, skip: number) {
  const samples = sessionSlice(perLabel, skip).map((row) => ({ angle: row.angle, frame: stringified(row) }))
  return app.inject({ method: 'POST', url: '/training/post/samples', headers: ADMIN, payload: { ID: DEVICE, samples } })
}

function postImport (app: App, perLabel: number, skip: number) {
  return app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(perLabel, skip))
  })
}

function assertStorageFull (response: { statusCode: number, body: string, json: () => unknown }, what: string): void {
  assert.equal(response.statusCode, 507, `${what}: ${response.body}`)
  assert.deepEqual(response.json(), { statusCode: 507, error: 'Insufficient Storage', message: STORAGE_FULL_MESSAGE, code: 'DS_STORAGE_FULL' })
}

test('a full database: writes answer 507 and store nothing of their request, reads keep answering, writing resumes when room returns', async (t) => {
  const app = await buildTestApp(t, { STORAGE_MAX_MB: '0.5' })
  const pageSize = app.storage.db.pragma('page_size', { simple: true }) as number
  assert.equal((app.storage.db.pragma('max_page_count', { simple: true }) as number) * pageSize, 0.5 * 1024 * 1024, 'STORAGE_MAX_MB caps the file')
  const frames = rawPiFrames().slice(0, BATCH)
  assert.equal((await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'front-door', ID: DEVICE } })).statusCode, 200)
  // enough samples of two angles that a training would start (so its refusal is the storage's)
  assert.equal((await postImport(app, 12, 0)).statusCode, 200)

  // fill it with labelled samples (which nothing drops to make room) until a batch is refused
  const SAMPLES = 10 // per angle, 70 a batch
  let refused
  for (let batch = 1; ; batch++) {
    assert.ok(batch < 200, 'the database never filled up')
    const response = await postSamples(app, SAMPLES, 12 + batch * SAMPLES)
    if (response.statusCode !== 200) { refused = response; break }
  }
  assertStorageFull(refused, 'the batch of samples that does not fit')
  const full = rowCounts(app)
  assert.equal((full.samples - 84) % (SAMPLES * 7), 0, `only whole batches are stored (${full.samples} samples)`)
  // the refused batch was rolled back whole although a part of it fitted: a smaller one still goes in
  const fitted = await postSamples(app, 1, 0)
  assert.equal(fitted.statusCode, 200, `a part of the refused batch would have fitted: ${fitted.body}`)
  // no unlabelled frame to drop: frames are refused like any write (and their batch is rolled back whole)
  for (let i = 1; (await postSamples(app, 1, i)).statusCode === 200; i++) assert.ok(i < 100, 'the samples never filled the last room')
  // the log of past runs fills its last page too, so recording a new run needs a page the cap denies
  const pastRun = app.storage.db.prepare('INSERT INTO model_trainings (version, kind, started_at, ended_at, status, seconds) ' +
    "VALUES (?, 'csi', ?, ?, 'finished', 1)")
  for (let i = 0; ; i++) {
    assert.ok(i < 1000, 'the training log never filled its page')
    try {
      pastRun.run(`csi-20250101-000000-${String(i).padStart(3, '0')}`, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:01.000Z')
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'SQLITE_FULL')
      break
    }
  }
  const before = rowCounts(app)
  const lastFrameAt = async () => {
    const answer = await app.inject({ method: 'GET', url: '/ml/get/door_state' })
    return answer.json().doors.find((door: { device: number }) => door.device === DEVICE)?.lastFrameAt as string | undefined
  }
  const lastStored = await lastFrameAt()
  await new Promise((resolve) => setTimeout(resolve, 5))

  assertStorageFull(await postFrames(app, frames), 'POST /server/post/frames')
  assert.equal(await lastFrameAt(), lastStored, 'a batch that could not be stored did not move its door')
  assertStorageFull(await postSamples(app, 5, 20), 'POST /training/post/samples')
  assertStorageFull(await postImport(app, 5, 30), 'POST /training/post/import')
  assertStorageFull(await app.inject({ method: 'POST', url: '/training/post/train', headers: ADMIN, payload: { epochs: 1 } }), 'POST /training/post/train')
  assert.deepEqual(rowCounts(app), before, 'nothing of a refused request is stored')
  // a training that could not start leaves the state machine free for the next one
  assert.equal((await app.inject({ method: 'GET', url: '/training/get/training_status' })).body, 'TRAINING_FAILED')
  assert.match((await app.inject({ method: 'GET', url: '/debug/get/training_failure' })).json().message, /training could not start: database or disk is full/)

  // the reads keep answering
  assert.equal((await app.inject({ method: 'GET', url: '/debug/get/exists' })).body, 'Success')
  const live = await app.inject({ method: 'GET', url: '/app/get/list_of_servers' })
  assert.equal(live.statusCode, 200)
  assert.deepEqual(live.json().map((device: { id: number }) => device.id), [DEVICE])
  const doors = await app.inject({ method: 'GET', url: '/doors' })
  assert.equal(doors.statusCode, 200, doors.body)
  assert.equal((await app.inject({ method: 'GET', url: '/training/get/dataset' })).json().total, before.samples)
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(metrics.statusCode, 200)
  assert.match(metrics.body, /^doorsense_database_bytes \d+/m)

  // room returns (the cap raised at run time, as a restart with a larger STORAGE_MAX_MB would): writing resumes
  app.storage.setMaxBytes(8 * 1024 * 1024)
  const resumed = await postFrames(app, frames)
  assert.equal(resumed.statusCode, 200, resumed.body)
  assert.equal(resumed.json().accepted, BATCH)
  assert.equal((await postSamples(app, 5, 20)).statusCode, 200)
  // the very CSV refused above: a refused import is not remembered as done
  const imported = await postImport(app, 5, 30)
  assert.equal(imported.statusCode, 200, imported.body)
  assert.deepEqual(rowCounts(app), { frames: before.frames + BATCH, samples: before.samples + 35 + 35, trainings: before.trainings })
})

test('frame retention carries on after a failed pass: the error is reported, the timer keeps running', async (t) => {
  const storage = new Storage(tempDir(t))
  storage.migrate(RPI_SERVERS_SCHEMA)
  const store = new FrameStore(storage.db)
  const errors: unknown[] = []
  const retention = new FrameRetention(store, { hours: 0, perDevice: 0, intervalMs: 5, onError: (err) => errors.push(err) })
  t.after(() => retention.stop())
  // every pass fails from now on, as one would on a disk with no room left for the write-ahead log
  storage.close()
  retention.start()
  const deadline = Date.now() + 5000
  while (errors.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  assert.ok(errors.length >= 3, `each failing pass was reported and the next one ran (${errors.length} reports)`)
  assert.match(String(errors[0]), /database connection is not open/)
})
