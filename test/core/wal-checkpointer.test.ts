/**
 * WAL checkpoints off the request path (core/wal-checkpointer.ts): a worker
 * thread checkpoints, the log stays bounded under writes that never pause,
 * another connection's checkpoints do not count as changes made elsewhere,
 * and app.close() stops the timer and the thread. Real SQLite files in temp
 * dirs; sizes read from the files themselves.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DATABASE_FILE, Storage } from '../../core/storage.js'
import { buildTestApp, tempDir } from '../helper.js'

const walBytes = (file: string) => existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0

async function waitFor (condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

test('under writes that never pause, the worker checkpoints and the log is restarted: it stays far below what was written', async (t) => {
  const dir = tempDir(t)
  const storage = new Storage(dir)
  t.after(() => storage.close())
  // a remainder once the log holds 1000 pages (4 MiB), SQLite's own autocheckpoint size, not the default 64 MiB
  storage.checkpointInBackground(25, undefined, { resetFrames: 1000 })
  const file = join(dir, DATABASE_FILE)
  storage.db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)')
  const insert = storage.db.prepare('INSERT INTO blobs (body) VALUES (?)')
  const changes = () => storage.db.pragma('data_version', { simple: true }) as number
  const version = changes()
  let written = 0
  let largestWal = 0
  // 24 MB in commits of 8 kB every half millisecond (~16 MB/s), yielding to the event loop between
  // them but never idle: a checkpoint on another thread always overlaps a commit, as on a busy server
  while (written < 24e6) {
    const next = performance.now() + 0.5
    while (performance.now() < next) ;
    insert.run(Buffer.alloc(8000, written % 251))
    written += 8000
    if (written % 800_000 === 0) largestWal = Math.max(largestWal, walBytes(file))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const stats = storage.checkpoints
  assert.ok(stats, 'checkpointing in the background')
  assert.ok(stats.workerStarted && stats.worker > 0, `the worker checkpointed (${JSON.stringify(stats)})`)
  // without the remainders finished between requests SQLite never restarts the log and it holds all 24 MB
  assert.ok(stats.main > 0, `remainders finished on the app's connection (${JSON.stringify(stats)})`)
  assert.ok(largestWal < 12e6, `the log stayed bounded: at most ${largestWal} bytes for ${written} written`)
  assert.equal(changes(), version, 'another connection\'s checkpoints are no change made elsewhere (PRAGMA data_version)')
  assert.equal((storage.db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n, written / 8000, 'every row is there')
  await storage.stopCheckpoints()
  assert.equal(storage.checkpoints?.running, false)
})

test('WAL_CHECKPOINT_MS=0 leaves checkpoints to SQLite, inside commits', async (t) => {
  const app = await buildTestApp(t, { WAL_CHECKPOINT_MS: '0' })
  assert.equal(app.storage.checkpoints, undefined)
  assert.equal(app.storage.db.pragma('wal_autocheckpoint', { simple: true }), 1000)
})

test('app.close() stops the checkpoint timer and its thread, and the app\'s connection, last to close, checkpoints the log away', async (t) => {
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { WAL_CHECKPOINT_MS: '20' }, { dataDir })
  assert.equal(app.storage.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'no checkpoint inside a commit')
  const file = join(dataDir, DATABASE_FILE)
  // past the 1 MiB of log after which the thread starts
  app.storage.db.exec('CREATE TABLE filler (body BLOB NOT NULL)')
  const insert = app.storage.db.prepare('INSERT INTO filler (body) VALUES (?)')
  for (let i = 0; i < 400; i++) insert.run(Buffer.alloc(4000, i))
  assert.ok(walBytes(file) > 1024 * 1024)
  await waitFor(() => (app.storage.checkpoints?.worker ?? 0) >= 2)
  const metrics = (await app.inject({ url: '/metrics' })).body
  assert.match(metrics, /^doorsense_wal_checkpoints_total\{thread="worker"\} [1-9]\d*$/m)

  await app.close()
  const stopped = app.storage.checkpoints
  assert.equal(stopped?.running, false, 'the timer is cleared')
  // a connection still open on the worker thread would have kept the log: the app's connection was the last
  assert.equal(existsSync(`${file}-wal`), false, 'the worker\'s connection closed before the app\'s')
  await sleep(100)
  assert.equal(app.storage.checkpoints?.worker, stopped?.worker, 'no checkpoint after close')
})

test('a checkpoint thread that cannot open its database (the folder gone under it) does not fail the stop', async (t) => {
  const dir = tempDir(t)
  const storage = new Storage(dir)
  t.after(() => storage.close())
  storage.db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)')
  storage.db.prepare('INSERT INTO blobs (body) VALUES (?)').run(Buffer.alloc(2e6))
  const errors: Error[] = []
  storage.checkpointInBackground(5, (err) => errors.push(err))
  await waitFor(() => storage.checkpoints?.workerStarted === true)
  // the thread is starting: its folder goes (a test's temp dir removed before the app closed)
  rmSync(dir, { recursive: true, force: true })
  await storage.stopCheckpoints()
  assert.equal(storage.checkpoints?.running, false)
})
