/**
 * The contract of the Idempotency-Key store (core/idempotency-store.ts), the
 * same cases against both engines: SQLite in a temp directory
 * (`IdempotencyStore`), PostgreSQL in a fresh database
 * (`PostgresIdempotencyStore`, skipped with the reason when it is not
 * running, outside CI). A keyed write inserts a row into a table of the
 * test's own in the key's transaction (the SQLite connection's, or
 * `tx.client`), so that what commits with the key, and what rolls back with
 * it, is counted in the database. Then what only one engine has: SQLite's
 * refusal of an asynchronous keyed write, and PostgreSQL's instances, two
 * stores over one database, claiming the same key at once.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { IDEMPOTENCY_SCHEMA } from '../../core/idempotency-schema.js'
import { IdempotencyStore, rowBytes, type IdempotencyKeyStore, type KeyedRequest } from '../../core/idempotency-store.js'
import { PostgresIdempotencyStore, type PostgresIdempotencyStoreOptions } from '../../core/idempotency-store-postgres.js'
import { Postgres } from '../../core/postgres.js'
import { Storage } from '../../core/storage.js'
import { isPromise, type MaybePromise, type StoreTransaction } from '../../core/store-transaction.js'
import { testDatabaseOrSkip } from '../fixtures/postgres.js'
import { tempDir } from '../helper.js'

/** One test's database, through either engine. */
interface Backend {
  /** A key store over the database: a process (an instance) opening it now. */
  open (options: PostgresIdempotencyStoreOptions): Promise<IdempotencyKeyStore>
  /** Inserts one row into `things` in the keyed write's transaction. */
  insert (tx: StoreTransaction): MaybePromise<void>
  /** A statement the database refuses (NULL into a NOT NULL column), in the keyed write's transaction. */
  refused (tx: StoreTransaction): MaybePromise<void>
  /** Rows of `things` committed. */
  things (): Promise<number>
  /** Bytes the key table's rows record, as the database sums them. */
  tableBytes (): Promise<number>
}

interface Engine {
  name: 'sqlite' | 'postgres'
  /** A backend on a fresh database, or undefined once the test is skipped. */
  backend (t: TestContext): Promise<Backend | undefined>
}

const sqlite: Engine = {
  name: 'sqlite',
  async backend (t) {
    const storage = new Storage(tempDir(t))
    t.after(() => storage.close())
    storage.migrate(IDEMPOTENCY_SCHEMA)
    storage.db.exec('CREATE TABLE things (n INTEGER NOT NULL)')
    const scalar = (sql: string): number => (storage.db.prepare(sql).get() as { n: number }).n
    return {
      async open (options) {
        return new IdempotencyStore(storage.db, options)
      },
      insert (tx) {
        assert.equal(tx.client, null, 'SQLite: the transaction is the connection\'s own')
        storage.db.prepare('INSERT INTO things VALUES (1)').run()
      },
      refused () {
        storage.db.prepare('INSERT INTO things VALUES (NULL)').run()
      },
      async things () {
        return scalar('SELECT COUNT(*) AS n FROM things')
      },
      async tableBytes () {
        return scalar('SELECT COALESCE(SUM(bytes), 0) AS n FROM idempotency_keys')
      }
    }
  }
}

const postgres: Engine = {
  name: 'postgres',
  async backend (t) {
    const database = await testDatabaseOrSkip(t)
    if (!database) return undefined
    // the test's own connection: what it counts is what has committed
    const own = await Postgres.open(database.url, { max: 1, applicationName: 'doorsense-contract' })
    t.after(() => own.close())
    await own.query('CREATE TABLE things (n integer NOT NULL)')
    const scalar = async (sql: string): Promise<number> => Number((await own.query<{ n: string }>(sql)).rows[0].n)
    return {
      async open (options) {
        // each store its own pool: another instance of the cluster
        const pool = await Postgres.open(database.url, { max: 4, applicationName: 'doorsense-contract' })
        t.after(() => pool.close())
        return PostgresIdempotencyStore.open(pool, options)
      },
      async insert (tx) {
        assert.ok(tx.client, 'PostgreSQL: a client in BEGIN')
        await tx.client.query('INSERT INTO things VALUES (1)')
      },
      async refused (tx) {
        await tx.client!.query('INSERT INTO things VALUES (NULL)')
      },
      things: () => scalar('SELECT COUNT(*) AS n FROM things'),
      tableBytes: () => scalar('SELECT COALESCE(SUM(bytes), 0) AS n FROM idempotency_keys')
    }
  }
}

/** `fn` of `value` once it is there: at once on SQLite, after the promise on PostgreSQL. */
function then<T, U> (value: MaybePromise<T>, fn: (value: T) => U): MaybePromise<U> {
  return isPromise(value) ? value.then(fn) : fn(value)
}

/** A clock the test moves, shared by the stores of a test (the instances of a cluster read the same time). */
function manualClock () {
  const clock = { now: Date.UTC(2031, 4, 6, 7, 8, 9, 123), read: () => clock.now }
  return clock
}

/** The store's options with the test's clock. */
function withClock (clock: { read: () => number }, options: Partial<PostgresIdempotencyStoreOptions> = {}): PostgresIdempotencyStoreOptions {
  return { windowMs: 1000, now: clock.read, ...options }
}

const REQUEST: KeyedRequest = { scope: 'POST /things device 1', key: 'k-1', fingerprint: 'a' }

function statusOf (err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode
}

for (const engine of [sqlite, postgres]) {
  test(`${engine.name}: a key runs its write once, a repeat replays it, another request under the key is a 422, another scope is another request`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const store = await backend.open(withClock(manualClock(), { windowMs: 60_000 }))
    let writes = 0
    const write = (tx: StoreTransaction) => then(backend.insert(tx), () => ({ stored: ++writes }))

    assert.deepEqual(await store.once(REQUEST, write), { replayed: false, body: { stored: 1 } })
    assert.deepEqual(await store.once(REQUEST, write), { replayed: true, answer: { status: 200, body: '{"stored":1}', derived: false } })
    assert.equal(await backend.things(), 1)
    await assert.rejects(store.once({ ...REQUEST, fingerprint: 'b' }, write), (err: Error & { code?: string }) => {
      assert.equal(statusOf(err), 422)
      assert.equal(err.code, 'DS_IDEMPOTENCY_KEY_REUSED')
      assert.match(err.message, /^Idempotency-Key "k-1" was used 0 s ago for a different request on POST \/things device 1/)
      return true
    })
    assert.deepEqual(await store.once({ ...REQUEST, scope: 'POST /things device 2' }, write), { replayed: false, body: { stored: 2 } })
    // the format the route gives: its status and its serializer, replayed byte for byte
    const formatted = { ...REQUEST, key: 'k-formatted' }
    const format = { status: 201, serialize: (body: unknown) => `${JSON.stringify(body)}\n` }
    assert.equal((await store.once(formatted, write, format)).replayed, false)
    assert.deepEqual(await store.once(formatted, write, format), { replayed: true, answer: { status: 201, body: '{"stored":3}\n', derived: false } })
    assert.equal(await backend.things(), 3)
    assert.equal(await store.count(), 3)

    // without a key every call writes, in a transaction of its own
    assert.deepEqual(await store.once(undefined, write), { replayed: false, body: { stored: 4 } })
    assert.deepEqual(await store.once(undefined, write), { replayed: false, body: { stored: 5 } })
    assert.equal(await backend.things(), 5)
    assert.equal(await store.count(), 3)
  })

  test(`${engine.name}: a write that fails records nothing — neither its rows nor the key — and the key may come again`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const store = await backend.open(withClock(manualClock(), { windowMs: 60_000 }))
    const write = (tx: StoreTransaction) => then(backend.insert(tx), () => 'stored')

    // a write that throws after it inserted
    const throwing = { ...REQUEST, key: 'k-throws' }
    await assert.rejects(store.once(throwing, (tx) => then(backend.insert(tx), () => { throw new Error('disk on fire') })), /disk on fire/)
    // a statement the database refuses, after one it took
    const refused = { ...REQUEST, key: 'k-refused' }
    await assert.rejects(store.once(refused, (tx) => then(backend.insert(tx), () => backend.refused(tx))), /NOT NULL|null value/)
    // the answer that cannot be recorded (its serializer fails): the data cannot commit without its key
    const unrecorded = { ...REQUEST, key: 'k-unrecorded' }
    await assert.rejects(store.once(unrecorded, write, { serialize: () => { throw new Error('no room for the answer') } }), /no room for the answer/)
    assert.equal(await backend.things(), 0, 'every row rolled back with its key')
    assert.equal(await store.count(), 0, 'no key recorded')
    assert.equal(store.bytes, 0)

    for (const request of [throwing, refused, unrecorded]) {
      assert.deepEqual(await store.once(request, write), { replayed: false, body: 'stored' }, `${request.key} comes again as new`)
      assert.equal((await store.once(request, write)).replayed, true)
    }
    assert.equal(await backend.things(), 3, 'each row committed with its key')
    assert.equal(await store.count(), 3)
  })

  test(`${engine.name}: an answer that comes later — a repeat waits for it, a failed write-less attempt is forgotten, one that wrote resumes without writing`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const store = await backend.open(withClock(manualClock(), { windowMs: 60_000 }))
    let writes = 0
    const write = (tx: StoreTransaction) => then(backend.insert(tx), () => ({ wrote: ++writes }))
    const request: KeyedRequest = { scope: 'POST /later device 1', key: 'k', fingerprint: 'f' }

    // two at once: the second waits for the first, in this process
    const [first, second] = await Promise.all([store.begin(request, write), store.begin(request, write)])
    assert.deepEqual(first, { kind: 'started', resumed: false, partial: { wrote: 1 } })
    assert.equal(second.kind, 'wait')
    assert.equal((await store.begin(request, write)).kind, 'wait')
    await assert.rejects(store.begin({ ...request, fingerprint: 'other' }, write), /different request/)
    let settled = false
    const waited = (second.kind === 'wait' ? second.settled : Promise.reject(new Error('no wait'))).then(() => { settled = true })
    await store.finish(request, { answer: 42 })
    await waited
    assert.equal(settled, true)
    assert.deepEqual(await store.begin(request, write), { kind: 'replay', answer: { status: 200, body: '{"answer":42}', derived: false } })
    assert.equal(writes, 1)

    // failed before writing: forgotten, the retry starts afresh
    const bare = { ...request, key: 'bare' }
    assert.equal((await store.begin(bare, () => null)).kind, 'started')
    await store.abandon(bare, true)
    assert.deepEqual(await store.begin(bare, write), { kind: 'started', resumed: false, partial: { wrote: 2 } })
    // a digest in place of the answer: replayed as recorded, marked derived
    await store.finish(bare, { big: 'answer' }, {}, { captured: 2 })
    assert.deepEqual(await store.begin(bare, write), { kind: 'replay', answer: { status: 200, body: '{"captured":2}', derived: true } })

    // failed after writing: the retry resumes with the first attempt's partial result, writing nothing
    const wrote = { ...request, key: 'wrote' }
    assert.equal((await store.begin(wrote, write)).kind, 'started')
    await store.abandon(wrote, false)
    assert.deepEqual(await store.begin(wrote, write), { kind: 'started', resumed: true, partial: { wrote: 3 } })
    assert.equal((await store.begin(wrote, write)).kind, 'wait', 'the resumed request is under way here')
    await store.finish(wrote, 'done')
    assert.deepEqual(await store.begin(wrote, write), { kind: 'replay', answer: { status: 200, body: '"done"', derived: false } })

    // a begin whose write fails records nothing and is not left under way
    const failing = { ...request, key: 'failing' }
    await assert.rejects(store.begin(failing, (tx) => then(backend.insert(tx), () => backend.refused(tx))), /NOT NULL|null value/)
    assert.deepEqual(await store.begin(failing, write), { kind: 'started', resumed: false, partial: { wrote: 4 } })
    await store.finish(failing, 'ok')
    assert.equal(writes, 4)
    assert.equal(await backend.things(), 4)
  })

  test(`${engine.name}: past the window a key is new again, whatever it named; pruning deletes what expired, oldest first`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const clock = manualClock()
    const store = await backend.open(withClock(clock, { windowMs: 1000 }))
    const write = (tx: StoreTransaction) => then(backend.insert(tx), () => 'stored')
    for (let i = 0; i < 5; i++) {
      assert.equal((await store.once({ ...REQUEST, key: `k-${i}` }, write)).replayed, false)
      clock.now += 100
    }
    // k-0 at +0 ms … k-4 at +400 ms; now +500
    clock.now += 499
    assert.equal((await store.once({ ...REQUEST, key: 'k-0' }, write)).replayed, true, 'within the window: 999 ms')
    clock.now += 1
    const takenOver = { ...REQUEST, key: 'k-0', fingerprint: 'c' }
    assert.equal((await store.once(takenOver, write)).replayed, false, 'an expired key is taken over, whatever it named before')
    assert.equal((await store.once(takenOver, write)).replayed, true)
    assert.equal(await backend.things(), 6)
    assert.equal(await store.count(), 5)
    // +1000: k-1 (+100) … expire as the clock passes them; k-0 was taken over at +1000
    clock.now += 250
    assert.equal(await store.prune(), 2, 'k-1 and k-2')
    assert.equal(await store.prune(), 0)
    clock.now += 1000
    assert.equal(await store.prune(1), 1, 'at most the limit')
    assert.equal(await store.prune(), 2)
    assert.equal(await store.count(), 0)
    await store.recount()
    assert.equal(store.bytes, 0)
  })

  test(`${engine.name}: answers are kept under maxBytes, the oldest answered keys first, whatever their age; a request under way stays`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const clock = manualClock()
    const store = await backend.open(withClock(clock, { windowMs: 3_600_000, maxBytes: 200_000 }))
    const underWay: KeyedRequest = { scope: 'POST /slow device 1', key: 'under-way', fingerprint: 'x' }
    assert.equal((await store.begin(underWay, () => 'partial')).kind, 'started')
    // 300 keys with 10 kB answers each: 3 MB offered, 200 kB allowed
    for (let i = 0; i < 300; i++) {
      await store.once({ scope: 'POST /big device 1', key: `k-${i}`, fingerprint: 'f' }, () => 'x'.repeat(10_000))
      clock.now += 1
      if (store.overSize) assert.ok(await store.pruneOverSize() > 0)
    }
    assert.equal(store.overSize, false)
    assert.ok(store.bytes <= 200_000, `counted ${store.bytes} bytes`)
    assert.equal(store.bytes, await backend.tableBytes(), 'the count is the table\'s')
    const left = await store.count()
    assert.ok(left >= 10 && left <= 21, `the newest keys are still there: ${left}`)
    assert.equal((await store.once({ scope: 'POST /big device 1', key: 'k-299', fingerprint: 'f' }, () => 'again')).replayed, true, 'the newest is replayed')
    assert.equal((await store.once({ scope: 'POST /big device 1', key: 'k-0', fingerprint: 'f' }, () => 'again')).replayed, false, 'the oldest was forgotten')
    assert.equal(await store.pruneOverSize(), 0, 'nothing while under the bound')
    await store.finish(underWay, 'done')
    assert.deepEqual(await store.begin(underWay, () => 'again'), { kind: 'replay', answer: { status: 200, body: '"done"', derived: false } },
      'the request under way was never cut short')
    // a store opened later counts what the table holds
    await store.recount()
    assert.equal((await backend.open(withClock(clock))).bytes, store.bytes)
  })
}

test('sqlite: a keyed write that returns a promise is refused, and nothing is recorded', async (t) => {
  const backend = (await sqlite.backend(t))!
  const store = await backend.open(withClock(manualClock()))
  const asynchronous = (tx: StoreTransaction) => { backend.insert(tx); return Promise.resolve('later') }
  await assert.rejects(store.once(REQUEST, asynchronous), /a SQLite keyed write must be synchronous/)
  await assert.rejects(store.begin(REQUEST, asynchronous), /a SQLite keyed write must be synchronous/)
  assert.equal(await backend.things(), 0)
  assert.equal(await store.count(), 0)
  // without a key there is nothing to record: its value is awaited
  assert.deepEqual(await store.once(undefined, asynchronous), { replayed: false, body: 'later' })
})

test('postgres: two instances given the same key at once — exactly one writes, the other replays its answer', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const clock = manualClock()
  const [a, b] = await Promise.all([backend.open(withClock(clock, { windowMs: 60_000 })), backend.open(withClock(clock, { windowMs: 60_000 }))])
  let writes = 0
  // the write holds its transaction open a while, so that the other instance's claim meets it
  const write = async (tx: StoreTransaction) => {
    await backend.insert(tx)
    await tx.client!.query('SELECT pg_sleep(0.2)')
    return { writer: ++writes }
  }
  for (let round = 0; round < 3; round++) {
    const request = { ...REQUEST, key: `race-${round}` }
    const outcomes = await Promise.all([a, b, a, b].map((store) => store.once(request, write)))
    assert.equal(outcomes.filter((outcome) => !outcome.replayed).length, 1, `round ${round}: one write`)
    const body = JSON.stringify(outcomes.find((outcome) => !outcome.replayed)!.body)
    for (const outcome of outcomes) if (outcome.replayed) assert.equal(outcome.answer.body, body, 'the others replay its answer')
  }
  assert.equal(writes, 3)
  assert.equal(await backend.things(), 3)
  // a key recorded on one instance is known on the other, with its fingerprint
  await assert.rejects(b.once({ ...REQUEST, key: 'race-0', fingerprint: 'other' }, write), (err) => statusOf(err) === 422)
  // a write that fails on one instance leaves the key free for the other
  const failing = { ...REQUEST, key: 'fails-on-a' }
  await assert.rejects(a.once(failing, async (tx) => { await backend.insert(tx); await backend.refused(tx) }), /null value/)
  assert.equal((await b.once(failing, write)).replayed, false)
  assert.equal(await backend.things(), 4)
})

test('postgres: a request begun on one instance is a 409 on another while its lease runs, then resumed there without writing', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const clock = manualClock()
  const options = withClock(clock, { windowMs: 3_600_000, leaseMs: 5000 })
  const [a, b] = await Promise.all([backend.open(options), backend.open(options)])
  let writes = 0
  const write = async (tx: StoreTransaction) => {
    await backend.insert(tx)
    await tx.client!.query('SELECT pg_sleep(0.2)')
    return { captured: ++writes }
  }
  const request: KeyedRequest = { scope: 'POST /ml/post/batch device 5', key: 'batch', fingerprint: 'f' }
  const underWayElsewhere = (err: Error & { retryAfterSeconds?: number }) => {
    assert.equal(statusOf(err), 409)
    assert.match(err.message, /^Idempotency-Key "batch" belongs to a request still under way on another instance \(POST \/ml\/post\/batch device 5\)/)
    assert.equal(err.retryAfterSeconds, 1)
    return true
  }

  // both at once: one claims and writes, the other finds it under way
  const outcomes = await Promise.allSettled([a.begin(request, write), b.begin(request, write)])
  const started = outcomes.findIndex((outcome) => outcome.status === 'fulfilled')
  assert.ok(started >= 0, 'one started')
  const [owner, other] = started === 0 ? [a, b] : [b, a]
  assert.deepEqual((outcomes[started] as PromiseFulfilledResult<unknown>).value, { kind: 'started', resumed: false, partial: { captured: 1 } })
  const refused = outcomes[1 - started]
  assert.equal(refused.status, 'rejected')
  underWayElsewhere((refused as PromiseRejectedResult).reason)
  assert.equal(writes, 1)

  // the owner still working: a 409 on the other instance, a wait on its own
  clock.now += 4999
  await assert.rejects(other.begin(request, write), underWayElsewhere)
  assert.equal((await owner.begin(request, write)).kind, 'wait')
  // the owner died (it never answers): once its lease lapses another instance resumes it, writing nothing, and only one does
  const c = await backend.open(options)
  clock.now += 1
  const [resumed, third] = await Promise.allSettled([other.begin(request, write), c.begin(request, write)])
  assert.deepEqual(resumed.status === 'fulfilled' ? resumed.value : third.status === 'fulfilled' ? third.value : undefined,
    { kind: 'started', resumed: true, partial: { captured: 1 } })
  assert.equal([resumed, third].filter((outcome) => outcome.status === 'rejected').length, 1, 'the other resumer is turned away')
  assert.equal(writes, 1)
  assert.equal(await backend.things(), 1)

  // the first answer recorded stands; the late one records nothing
  await other.finish(request, { answer: 'resumed' })
  await owner.finish(request, { answer: 'late' })
  for (const store of [a, b]) {
    assert.deepEqual(await store.begin(request, write), { kind: 'replay', answer: { status: 200, body: '{"answer":"resumed"}', derived: false } })
  }
  assert.equal(await backend.tableBytes(), rowBytes(request, '{"answer":"resumed"}'), 'one answer recorded')

  // abandoned after it wrote: any instance resumes it at once
  const abandoned = { ...request, key: 'abandoned' }
  assert.equal((await a.begin(abandoned, write)).kind, 'started')
  await a.abandon(abandoned, false)
  assert.deepEqual(await b.begin(abandoned, write), { kind: 'started', resumed: true, partial: { captured: 2 } })
  // abandoned before it wrote: forgotten everywhere
  const bare = { ...request, key: 'bare' }
  assert.equal((await b.begin(bare, () => null)).kind, 'started')
  await b.abandon(bare, true)
  assert.deepEqual(await a.begin(bare, write), { kind: 'started', resumed: false, partial: { captured: 3 } })
})

test('postgres: instances past the size bound at once delete only the excess, and each sees the other\'s answers once it counts', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const clock = manualClock()
  const options = withClock(clock, { windowMs: 3_600_000, maxBytes: 250_000 })
  const [a, b] = await Promise.all([backend.open(options), backend.open(options)])
  // 15 answers of 10 kB on each instance: 300 kB in the table, past the bound, each instance counting its own 150 kB
  for (let i = 0; i < 15; i++) {
    for (const [name, store] of [['a', a], ['b', b]] as const) {
      await store.once({ scope: 'POST /big device 1', key: `${name}-${String(i).padStart(2, '0')}`, fingerprint: 'f' }, () => 'x'.repeat(10_000))
      clock.now += 1
    }
  }
  const row = rowBytes({ scope: 'POST /big device 1', key: 'a-00', fingerprint: 'f' }, JSON.stringify('x'.repeat(10_000)))
  assert.equal(await backend.tableBytes(), 30 * row)
  assert.deepEqual([a.bytes, b.bytes], [15 * row, 15 * row], 'each counts its own answers until it counts again')
  assert.equal(a.overSize || b.overSize, false)
  assert.equal(await a.pruneOverSize(), 0, 'not past the bound as far as it knows')
  await Promise.all([a.recount(), b.recount()])
  assert.deepEqual([a.bytes, b.bytes], [30 * row, 30 * row], 'a recount sees every instance\'s answers')
  assert.ok(a.overSize && b.overSize)
  // both prune at once: the first deletes ten (rows go ten at a time) to get under 90 %; the second, once the first
  // is done, counts again and finds nothing to delete (without the lock each would have deleted ten)
  const deleted = await Promise.all([a.pruneOverSize(), b.pruneOverSize()])
  assert.deepEqual([...deleted].sort((x, y) => x - y), [0, 10])
  const table = await backend.tableBytes()
  assert.equal(table, 20 * row)
  assert.equal(a.bytes, table)
  assert.equal(b.bytes, table)
})
