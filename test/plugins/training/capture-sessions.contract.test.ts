/**
 * The contract of the capture sessions (capture-sessions.ts), the same cases
 * against both: SQLite in a temp dir, PostgreSQL in a fresh database
 * (skipped with the reason when it is not running, outside CI). A "restart"
 * is new sessions over the same database. Then what a cluster needs on
 * PostgreSQL: a session opened through one instance labels the frames
 * another takes, its wanted frames are counted across both, a batch
 * retried through the other instance is labelled once, and either ends it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Postgres } from '../../../core/postgres.js'
import { Storage } from '../../../core/storage.js'
import { OWN_TRANSACTION } from '../../../core/store-transaction.js'
import { SqliteSampleStore, type SampleStore } from '../../../ml/store/sample-store.js'
import { PostgresSampleStore } from '../../../ml/store/sample-store-postgres.js'
import type { CaptureStatus } from '../../../schemas/training.js'
import { SqliteCaptureSessions, type CaptureSessions } from '../../../plugins/training/capture-sessions.js'
import { PostgresCaptureSessions } from '../../../plugins/training/capture-sessions-postgres.js'
import { testDatabaseOrSkip } from '../../fixtures/postgres.js'
import { tempDir } from '../../helper.js'

/** One instance's view of the database: its samples and its sessions (restored), and what `onEnded` told it. */
interface Instance {
  samples: SampleStore
  captures: CaptureSessions
  ended: CaptureStatus[]
}

interface Engine {
  name: 'sqlite' | 'postgres'
  /** Opens an instance over the test's database (a fresh one on the first call); undefined once the test is skipped. */
  opener (t: TestContext): Promise<((now?: () => number) => Promise<Instance>) | undefined>
}

const sqlite: Engine = {
  name: 'sqlite',
  async opener (t) {
    const dir = tempDir(t)
    return async (now) => {
      const storage = new Storage(dir)
      const samples = new SqliteSampleStore(storage)
      const ended: CaptureStatus[] = []
      const captures = new SqliteCaptureSessions({ storage, samples, now, onEnded: (status) => ended.push(status) })
      t.after(async () => {
        await captures.close()
        storage.close()
      })
      await captures.restore()
      return { samples, captures, ended }
    }
  }
}

const postgres: Engine = {
  name: 'postgres',
  async opener (t) {
    const database = await testDatabaseOrSkip(t)
    if (!database) return undefined
    return async (now) => {
      const db = await Postgres.open(database.url)
      const samples = await PostgresSampleStore.open(db)
      const ended: CaptureStatus[] = []
      const captures = await PostgresCaptureSessions.open({ db, samples, now, onEnded: (status) => ended.push(status) })
      t.after(async () => {
        await captures.close()
        await samples.close()
        await db.close()
      })
      await captures.restore()
      return { samples, captures, ended }
    }
  }
}

const frames = (n: number, value = 1): Float32Array[] => Array.from({ length: n }, (_, i) => new Float32Array(106).fill(value + i))

async function until (what: string, check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

for (const engine of [sqlite, postgres]) {
  test(`${engine.name}: a session labels its device's frames with its angle until its time is up`, async (t) => {
    const open = await engine.opener(t)
    if (!open) return
    const { captures, samples, ended } = await open()
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 3, frames(4), 'frames'), 0, 'no session: nothing labelled')
    assert.equal(captures.status(3), undefined)
    const opened = await captures.start(3, 45, 0.4)
    assert.equal(opened.active, true)
    assert.equal(opened.framesStored, 0)
    await assert.rejects(captures.start(3, 60, 5), /device 3 is already being captured at 45°/)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 3, frames(4), 'frames'), 4)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 3, frames(2), 'inference'), 2)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 4, frames(2), 'frames'), 0, 'another device is not captured')
    await until('the status to count them', () => captures.status(3)?.framesStored === 6)
    await until('the session to end', () => ended.length === 1, 2000)
    assert.equal(ended[0].state, 'finished')
    assert.equal(ended[0].framesStored, 6)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 3, frames(4), 'frames'), 0, 'the session is over')
    assert.deepEqual(await samples.countsByAngle('csi', { device: 3 }), [{ angle: 45, count: 6 }])
    assert.deepEqual((await samples.summary('csi')).sources, [{ source: 'frames', count: 4 }, { source: 'inference', count: 2 }])
    // a new session of the device may open now
    assert.equal((await captures.start(3, 90, 5)).angle, 90)
  })

  test(`${engine.name}: a session that wants n frames takes n, labels them with its own source, and ends`, async (t) => {
    const open = await engine.opener(t)
    if (!open) return
    const { captures, samples, ended } = await open()
    await captures.start(7, 0, 30, { frames: 5, source: 'calibration' })
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 7, frames(3), 'frames'), 3)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 7, frames(3), 'frames'), 2, 'only what it still wants')
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 7, frames(3), 'frames'), 0)
    await until('the end to be told', () => ended.length === 1)
    assert.equal(ended[0].state, 'finished')
    assert.equal(captures.status(7)?.active, false)
    assert.deepEqual(await samples.countsByDeviceAndAngle('csi', 'calibration'), [{ device: 7, angle: 0, count: 5 }])
  })

  test(`${engine.name}: a cancel ends the session now and keeps its frames, or drops them`, async (t) => {
    const open = await engine.opener(t)
    if (!open) return
    const { captures, samples } = await open()
    assert.equal(await captures.cancel(1), undefined, 'nothing open')
    await captures.start(1, 30, 30)
    await captures.recordWithin(OWN_TRANSACTION, 1, frames(3), 'frames')
    const kept = await captures.cancel(1)
    assert.equal(kept?.state, 'cancelled')
    assert.equal(kept?.framesStored, 3)
    assert.equal(await captures.recordWithin(OWN_TRANSACTION, 1, frames(3), 'frames'), 0)
    await captures.start(1, 60, 30)
    await captures.recordWithin(OWN_TRANSACTION, 1, frames(4), 'frames')
    const dropped = await captures.cancel(1, { keepFrames: false })
    assert.equal(dropped?.framesDropped, 4)
    assert.equal(dropped?.framesStored, 0)
    assert.deepEqual(await samples.countsByAngle('csi', { device: 1 }), [{ angle: 30, count: 3 }], 'the first session\'s frames stay')
  })

  test(`${engine.name}: after a restart a session in time goes on, and one whose time ran out meanwhile is interrupted`, async (t) => {
    const open = await engine.opener(t)
    if (!open) return
    let clock = Date.now()
    const first = await open(() => clock)
    await first.captures.start(1, 0, 60)
    await first.captures.start(2, 90, 2)
    await first.captures.recordWithin(OWN_TRANSACTION, 2, frames(3), 'frames')
    await first.captures.close()
    clock += 5000
    const second = await open(() => clock)
    assert.equal(second.captures.status(1)?.active, true)
    assert.equal(await second.captures.recordWithin(OWN_TRANSACTION, 1, frames(2), 'frames'), 2, 'the session in time goes on')
    const interrupted = second.captures.status(2)
    assert.equal(interrupted?.state, 'interrupted')
    assert.equal(interrupted?.framesStored, 3)
  })
}

test('postgres: two instances share the sessions: labels from both, counted across both, a retried batch once, ended by either', async (t) => {
  const open = await postgres.opener(t)
  if (!open) return
  const a = await open()
  const b = await open()
  await a.captures.start(5, 15, 30, { frames: 40 })
  await until('B to know A\'s session', () => b.captures.status(5)?.active === true, 2000)
  // both instances label at once: never more than the session wants
  const labelling = Array.from({ length: 12 }, async (_, i) => (i % 2 === 0 ? a : b).captures.recordWithin(OWN_TRANSACTION, 5, frames(5), 'frames'))
  const stored = await Promise.all(labelling)
  assert.equal(stored.reduce((sum, n) => sum + n, 0), 40)
  assert.equal(await a.samples.countWhere('csi', { device: 5, angle: 15 }), 40)
  await until('both to see it finished', () => a.captures.status(5)?.state === 'finished' && b.captures.status(5)?.state === 'finished')
  assert.equal(a.ended.length + b.ended.length, 1, 'its end is told once, by the instance that ended it')

  await b.captures.start(6, 90, 30)
  await until('A to know B\'s session', () => a.captures.status(6)?.active === true)
  assert.equal(await a.captures.recordWithin(OWN_TRANSACTION, 6, frames(3), 'frames', 'batch-1'), 3)
  assert.equal(await b.captures.recordWithin(OWN_TRANSACTION, 6, frames(3), 'frames', 'batch-1'), 0, 'the same batch through B: labelled once')
  assert.equal(await b.captures.recordWithin(OWN_TRANSACTION, 6, frames(3), 'frames', 'batch-2'), 3)
  await until('A to see 6 stored', () => a.captures.status(6)?.framesStored === 6)
  const cancelled = await a.captures.cancel(6, { keepFrames: false })
  assert.equal(cancelled?.framesDropped, 6)
  await until('B to see it cancelled', () => b.captures.status(6)?.state === 'cancelled')
  assert.equal(await b.captures.recordWithin(OWN_TRANSACTION, 6, frames(3), 'frames', 'batch-3'), 0)
  assert.equal(await b.samples.countWhere('csi', { device: 6 }), 0)
})
