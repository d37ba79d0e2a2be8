/**
 * The contract of the labelled samples (sample-store.ts), the same cases
 * against both stores: SQLite in a temp dir, PostgreSQL in a fresh database
 * (skipped with the reason when it is not running, outside CI). Then what a
 * cluster adds on PostgreSQL: two instances' stores over one database, a
 * delete on one heard on the other, and imports racing for the same content.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Postgres } from '../../../core/postgres.js'
import { Storage } from '../../../core/storage.js'
import { OWN_TRANSACTION, SQLITE_TRANSACTION, thenMaybe, valueNow, type MaybePromise, type StoreTransaction } from '../../../core/store-transaction.js'
import { SqliteSampleStore, type NewSample, type SampleDeletion, type SampleStore } from '../../../ml/store/sample-store.js'
import { PostgresSampleStore } from '../../../ml/store/sample-store-postgres.js'
import { testDatabaseOrSkip } from '../../fixtures/postgres.js'
import { tempDir } from '../../helper.js'

/** A store over a fresh database; another over the same one (a restart, or another instance); a transaction as the key store opens one. */
interface Opened {
  store: SampleStore
  another: () => Promise<SampleStore>
  transaction: <T>(fn: (tx: StoreTransaction) => MaybePromise<T>) => Promise<T>
}

interface Engine {
  name: 'sqlite' | 'postgres'
  /** A store over a fresh database, and a way to open another over the same one (a restart, or another instance); undefined once skipped. */
  open (t: TestContext): Promise<Opened | undefined>
}

const sqlite: Engine = {
  name: 'sqlite',
  async open (t) {
    const dir = tempDir(t)
    const storages: Storage[] = []
    t.after(() => { for (const storage of storages) storage.close() })
    const storage = new Storage(dir)
    storages.push(storage)
    const store = new SqliteSampleStore(storage)
    return {
      store,
      async another () {
        const next = new Storage(dir)
        storages.push(next)
        return new SqliteSampleStore(next)
      },
      // the app connection's transaction, as the key store opens it: the write is synchronous
      async transaction (fn) {
        return storage.db.transaction(() => valueNow(fn(SQLITE_TRANSACTION), 'the write'))()
      }
    }
  }
}

const postgres: Engine = {
  name: 'postgres',
  async open (t) {
    const database = await testDatabaseOrSkip(t)
    if (!database) return undefined
    const pools: Postgres[] = []
    const stores: SampleStore[] = []
    t.after(async () => {
      for (const store of stores) await store.close()
      for (const pool of pools) await pool.close()
    })
    const open = async (): Promise<SampleStore> => {
      const pool = await Postgres.open(database.url)
      pools.push(pool)
      const store = await PostgresSampleStore.open(pool)
      stores.push(store)
      return store
    }
    const store = await open()
    return { store, another: open, transaction: async (fn) => pools[0].transaction(async (client) => await fn({ client })) }
  }
}

const sample = (angle: number, value: number, extra: Partial<NewSample> = {}): NewSample => ({
  kind: 'csi', angle, features: Float32Array.from({ length: 106 }, (_, i) => value + i / 1000), device: 1, source: 'samples', ...extra
})

for (const engine of [sqlite, postgres]) {
  test(`${engine.name}: samples keep their order, features and labels; counts and summaries agree; a restart reads them back`, async (t) => {
    const opened = await engine.open(t)
    if (!opened) return
    const { store } = opened
    assert.equal(await store.lastId(), 0)
    assert.equal(await store.insert([sample(0, 1), sample(90, 2), sample(0, 3, { device: null, source: 'import' })]), 3)
    assert.equal(await store.insert([]), 0)
    assert.equal(await store.insert([sample(45, 4, { kind: 'rssi', features: Float32Array.of(-40) })]), 1)
    const set = await store.trainingSet('csi')
    assert.deepEqual(set.angles, [0, 90, 0])
    assert.deepEqual([...set.features[1].slice(0, 3)], [...Float32Array.of(2, 2.001, 2.002)])
    assert.deepEqual((await store.trainingSet('csi', { device: null })).angles, [0])
    assert.deepEqual([...(await store.labelCounts('csi'))].sort(), [[0, 2], [90, 1]])
    assert.equal(await store.count('csi'), 3)
    assert.equal(await store.count('rssi'), 1)
    assert.equal(await store.countWhere('csi', { angle: 0, sources: ['samples', 'import'] }), 2)
    assert.equal(await store.countWhere('csi', { sources: [] }), 0, 'no source named: none match')
    const first = await store.lastId()
    assert.ok(first >= 4)
    await store.insert([sample(90, 5)])
    assert.equal(await store.countWhere('csi', { afterId: first }), 1)
    assert.deepEqual(await store.countsByAngle('csi', { device: 1 }), [{ angle: 0, count: 1 }, { angle: 90, count: 2 }])
    assert.deepEqual(await store.summary('csi'), {
      kind: 'csi',
      total: 4,
      labels: [{ angle: 0, count: 2 }, { angle: 90, count: 2 }],
      sources: [{ source: 'import', count: 1 }, { source: 'samples', count: 3 }],
      devices: [{ device: null, count: 1 }, { device: 1, count: 3 }]
    })
    const restarted = await opened.another()
    assert.deepEqual((await restarted.trainingSet('csi')).angles, [0, 90, 0, 90])
  })

  test(`${engine.name}: a delete removes what its filter names and is an event with what it removed`, async (t) => {
    const opened = await engine.open(t)
    if (!opened) return
    const { store } = opened
    const heard: SampleDeletion[] = []
    store.on('deleted', (deletion) => heard.push(deletion))
    await store.insert([0, 0, 0, 15, 15].map((angle, i) => sample(angle, i, { source: 'calibration' })))
    await store.insert([sample(0, 9, { device: 2, source: 'calibration' })])
    assert.deepEqual(await store.countsByDeviceAndAngle('csi', 'calibration'),
      [{ device: 1, angle: 0, count: 3 }, { device: 1, angle: 15, count: 2 }, { device: 2, angle: 0, count: 1 }])
    assert.equal(await store.delete('csi', { device: 1, angle: 15 }), 2)
    assert.equal(await store.delete('csi', { device: 3 }), 0)
    assert.deepEqual(heard, [{ kind: 'csi', filter: { device: 1, angle: 15 }, removed: 2 }, { kind: 'csi', filter: { device: 3 }, removed: 0 }])
    assert.equal(await store.count('csi'), 4)
  })

  test(`${engine.name}: an import is stored whole with its record; the same content for the same device is refused unless allowed`, async (t) => {
    const opened = await engine.open(t)
    if (!opened) return
    const { store } = opened
    const rows = [sample(0, 1, { source: 'import' }), sample(90, 2, { source: 'import' })]
    const first = await store.insertImportWithin(OWN_TRANSACTION, rows, 'abc', 7)
    assert.ok('importId' in first)
    const again = await store.insertImportWithin(OWN_TRANSACTION, rows, 'abc', 7)
    assert.ok('duplicateOf' in again)
    assert.equal(again.duplicateOf.id, first.importId)
    assert.equal(again.duplicateOf.rows, 2)
    assert.equal(again.duplicateOf.device, 7)
    assert.ok('importId' in await store.insertImportWithin(OWN_TRANSACTION, rows, 'abc', null), 'another device (none) is another import')
    assert.ok('importId' in await store.insertImportWithin(OWN_TRANSACTION, rows, 'abc', 7, { allowDuplicate: true }))
    assert.equal(await store.count('csi'), 6)
    assert.equal((await store.earlierImport('abc', null))?.device, null)
    // an import whose samples are all deleted no longer counts
    await store.delete('csi', {})
    assert.equal(await store.earlierImport('abc', 7), undefined)
    assert.ok('importId' in await store.insertImportWithin(OWN_TRANSACTION, rows, 'abc', 7))
  })

  test(`${engine.name}: samples written within a transaction commit with it, and none of them when it fails`, async (t) => {
    const opened = await engine.open(t)
    if (!opened) return
    const { store, transaction } = opened
    assert.equal(await transaction((tx) => store.insertWithin(tx, [sample(0, 1), sample(15, 2)])), 2)
    // composed as a route composes a keyed write: each step after the one before, synchronous on SQLite
    await assert.rejects(transaction((tx) => thenMaybe(store.insertWithin(tx, [sample(30, 3)]), () =>
      thenMaybe(store.insertImportWithin(tx, [sample(45, 4)], 'def', 1), () => {
        throw new Error('the request failed after its writes')
      }))), /the request failed/)
    assert.deepEqual((await store.trainingSet('csi')).angles, [0, 15])
    assert.equal(await store.earlierImport('def', 1), undefined)
    // a sample the database refuses fails its whole batch
    await assert.rejects(async () => store.insert([sample(60, 5), sample(60, 6, { kind: 'bad' as 'csi' })]))
    assert.equal(await store.count('csi'), 2)
  })
}

test('postgres: instances share one store: a delete on one is heard on the other, and two importers of one content store it once', async (t) => {
  const opened = await postgres.open(t)
  if (!opened) return
  const { store: a } = opened
  const b = await opened.another()
  const heardOnA: SampleDeletion[] = []
  a.on('deleted', (deletion) => heardOnA.push(deletion))
  await a.insert([sample(0, 1, { source: 'calibration' }), sample(90, 2, { source: 'calibration' })])
  assert.equal(await b.count('csi'), 2, 'B reads what A wrote')
  const heardOnB = once(b, 'deleted')
  assert.equal(await b.delete('csi', { angle: 90 }), 1)
  await heardOnB
  const deadline = Date.now() + 2000
  while (heardOnA.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  await a.delete('csi', { angle: 0 })
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(heardOnA, [{ kind: 'csi', filter: { angle: 90 }, removed: 1 }, { kind: 'csi', filter: { angle: 0 }, removed: 1 }],
    'A heard B\'s delete, and its own once')

  const rows = Array.from({ length: 50 }, (_, i) => sample(i % 2 === 0 ? 0 : 90, i, { source: 'import' }))
  const outcomes = await Promise.all([a, b, a, b].map(async (store) => store.insertImportWithin(OWN_TRANSACTION, rows, 'same-file', 3)))
  assert.equal(outcomes.filter((outcome) => 'importId' in outcome).length, 1, 'one import stored')
  assert.equal(outcomes.filter((outcome) => 'duplicateOf' in outcome).length, 3)
  assert.equal(await a.count('csi'), 50)
})
