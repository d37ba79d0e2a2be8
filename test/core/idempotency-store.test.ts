/**
 * The Idempotency-Key store on its own (core/idempotency-store.ts), on a
 * fresh database with a clock the test moves; the routes' keys are in
 * idempotency.test.ts.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { IDEMPOTENCY_SCHEMA } from '../../core/idempotency-schema.js'
import { IdempotencyStore, type KeyedRequest } from '../../core/idempotency-store.js'
import { Storage } from '../../core/storage.js'
import { tempDir } from '../helper.js'

/** A key store on a fresh database with a clock the test moves. */
function storeWithClock (t: TestContext, windowMs = 1000, maxBytes?: number): { store: IdempotencyStore, storage: Storage, clock: { now: number } } {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  storage.migrate(IDEMPOTENCY_SCHEMA)
  storage.db.exec('CREATE TABLE things (n INTEGER)')
  const clock = { now: 1_000_000 }
  return { store: new IdempotencyStore(storage.db, { windowMs, maxBytes, now: () => clock.now }), storage, clock }
}

test('the store: a key runs its write once, a repeat gets the answer, another request under the key is a 422, the window ends it', async (t) => {
  const { store, storage, clock } = storeWithClock(t, 1000)
  const things = () => (storage.db.prepare('SELECT COUNT(*) AS n FROM things').get() as { n: number }).n
  const write = () => { storage.db.prepare('INSERT INTO things VALUES (1)').run(); return { stored: things() } }
  const request: KeyedRequest = { scope: 'POST /things device 1', key: 'k-1', fingerprint: 'a' }

  assert.deepEqual(await store.once(request, write), { replayed: false, body: { stored: 1 } })
  assert.deepEqual(await store.once(request, write), { replayed: true, answer: { status: 200, body: '{"stored":1}', derived: false } })
  assert.equal(things(), 1)
  await assert.rejects(store.once({ ...request, fingerprint: 'b' }, write), (err: Error & { statusCode?: number, code?: string }) => {
    assert.equal(err.statusCode, 422)
    assert.equal(err.code, 'DS_IDEMPOTENCY_KEY_REUSED')
    assert.match(err.message, /Idempotency-Key "k-1" was used 0 s ago for a different request on POST \/things device 1/)
    return true
  })
  // the same key in another scope is another request
  assert.equal((await store.once({ ...request, scope: 'POST /things device 2' }, write)).replayed, false)
  assert.equal(things(), 2)

  // a write that throws records nothing: the key may come again
  const failing = { ...request, key: 'k-fails' }
  await assert.rejects(store.once(failing, () => { write(); throw new Error('disk on fire') }), /disk on fire/)
  assert.equal(things(), 2, 'the write rolled back with the key')
  assert.equal((await store.once(failing, write)).replayed, false)
  assert.equal(things(), 3)
  // nor can the data commit without its key: recording the answer failing rolls the write back
  const unrecorded = { ...request, key: 'k-unrecorded' }
  await assert.rejects(store.once(unrecorded, write, { serialize: () => { throw new Error('SQLITE_FULL') } }), /SQLITE_FULL/)
  assert.equal(things(), 3)
  assert.equal((await store.once(unrecorded, () => 'nothing')).replayed, false, 'the key was not recorded either')

  // past the window the key is new again, and pruning removes what expired
  clock.now += 999
  assert.equal((await store.once(request, write)).replayed, true)
  clock.now += 2
  assert.equal((await store.once({ ...request, fingerprint: 'c' }, write)).replayed, false, 'an expired key is taken over, whatever it named before')
  assert.equal(things(), 4)
  assert.equal(await store.count(), 4)
  clock.now += 1001
  assert.equal(await store.prune(), 4)
  assert.equal(await store.count(), 0)
})

test('the store: an answer that comes later — a repeat waits for it, a failed write-less attempt is forgotten, one that wrote resumes without writing', async (t) => {
  const { store, storage } = storeWithClock(t, 60_000)
  let writes = 0
  const write = () => { storage.db.prepare('INSERT INTO things VALUES (1)').run(); return { wrote: ++writes } }
  const request: KeyedRequest = { scope: 'POST /later device 1', key: 'k', fingerprint: 'f' }

  const first = await store.begin(request, write)
  assert.deepEqual(first, { kind: 'started', resumed: false, partial: { wrote: 1 } })
  const second = await store.begin(request, write)
  assert.equal(second.kind, 'wait')
  await assert.rejects(store.begin({ ...request, fingerprint: 'other' }, write), /different request/)
  setTimeout(() => { store.finish(request, { answer: 42 }).catch(() => {}) }, 10)
  await (second.kind === 'wait' ? second.settled : undefined)
  assert.deepEqual(await store.begin(request, write), { kind: 'replay', answer: { status: 200, body: '{"answer":42}', derived: false } })
  assert.equal(writes, 1)

  // failed before writing: forgotten, the retry starts afresh
  const bare = { ...request, key: 'bare' }
  assert.equal((await store.begin(bare, () => null)).kind, 'started')
  await store.abandon(bare, true)
  assert.deepEqual(await store.begin(bare, write), { kind: 'started', resumed: false, partial: { wrote: 2 } })
  await store.finish(bare, {})

  // failed after writing (or the process died): the retry resumes with the first attempt's partial result, writing nothing
  const wrote = { ...request, key: 'wrote' }
  await store.begin(wrote, write)
  await store.abandon(wrote, false)
  assert.deepEqual(await store.begin(wrote, write), { kind: 'started', resumed: true, partial: { wrote: 3 } })
  assert.equal(writes, 3)
  assert.equal((storage.db.prepare('SELECT COUNT(*) AS n FROM things').get() as { n: number }).n, 3)
})

test('the store keeps its answers under maxBytes: the oldest answered keys go first, whatever their age; a request under way stays', async (t) => {
  const { store, storage } = storeWithClock(t, 3_600_000, 200_000)
  const tableBytes = () => (storage.db.prepare('SELECT COALESCE(SUM(length(answer)), 0) AS n FROM idempotency_keys').get() as { n: number }).n
  const underWay: KeyedRequest = { scope: 'POST /slow device 1', key: 'under-way', fingerprint: 'x' }
  assert.equal((await store.begin(underWay, () => 'partial')).kind, 'started')
  // 1,000 keys with 10 kB answers each: 10 MB offered, 200 kB allowed
  for (let i = 0; i < 1000; i++) {
    await store.once({ scope: 'POST /big device 1', key: `k-${i}`, fingerprint: 'f' }, () => 'x'.repeat(10_000))
    if (store.overSize) await store.pruneOverSize()
  }
  assert.ok(store.bytes <= 200_000, `counted ${store.bytes} bytes`)
  assert.ok(tableBytes() <= 200_000, `the table holds ${tableBytes()} bytes of answers`)
  assert.ok(await store.count() >= 10, 'the newest keys are still there')
  assert.equal((await store.once({ scope: 'POST /big device 1', key: 'k-999', fingerprint: 'f' }, () => 'again')).replayed, true, 'the newest is replayed')
  assert.equal((await store.once({ scope: 'POST /big device 1', key: 'k-0', fingerprint: 'f' }, () => 'again')).replayed, false, 'the oldest was forgotten')
  await store.finish(underWay, 'done')
  assert.deepEqual(
    await store.begin(underWay, () => 'again'),
    { kind: 'replay', answer: { status: 200, body: '"done"', derived: false } },
    'the request under way was never cut short'
  )
  // a restarted store counts what the table holds
  await store.recount()
  const before = store.bytes
  assert.equal(new IdempotencyStore(storage.db, { windowMs: 3_600_000 }).bytes, before)
})
