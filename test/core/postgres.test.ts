/**
 * core/postgres.ts on a real PostgreSQL, a fresh database per test (skipped
 * with the reason when the engine is not running, outside CI): versioned
 * migrations under the advisory lock, with instances starting at once; the
 * refusal of a newer database; transactions; what a failed connection says.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { Postgres, type PgAreaSchema } from '../../core/postgres.js'
import { testDatabaseOrSkip } from '../fixtures/postgres.js'

/** A fresh database's URL, or undefined once the test is skipped. */
async function freshDatabase (t: TestContext): Promise<string | undefined> {
  const database = await testDatabaseOrSkip(t)
  if (!database) return undefined
  return database.url
}

async function open (t: TestContext, url: string): Promise<Postgres> {
  const pg = await Postgres.open(url, { max: 2, applicationName: 'doorsense-test' })
  t.after(() => pg.close())
  return pg
}

/** Migrations that fail if run twice (a plain CREATE TABLE) and count how often they ran (a row each time). */
const PROBE: PgAreaSchema = {
  area: 'probe',
  migrations: [
    // slow enough that the other instances are surely waiting on the lock meanwhile
    'CREATE TABLE probe_runs (migration integer NOT NULL); SELECT pg_sleep(0.2); INSERT INTO probe_runs VALUES (1)',
    'INSERT INTO probe_runs VALUES (2)',
    'CREATE TABLE probe_more (x integer); INSERT INTO probe_runs VALUES (3)'
  ]
}

async function recorded (pg: Postgres, area: string): Promise<Array<{ version: number, count: number }>> {
  const { rows } = await pg.query<{ version: number, count: number }>(
    'SELECT version, count(*)::integer AS count FROM doorsense_migrations WHERE area = $1 GROUP BY version ORDER BY version', [area])
  return rows
}

test('five instances starting at once on a fresh database apply each migration exactly once; a later start applies none', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const instances = await Promise.all(Array.from({ length: 5 }, () => Postgres.open(url, { max: 1 })))
  t.after(() => Promise.all(instances.map((pg) => pg.close())))
  const applied = await Promise.all(instances.map((pg) => pg.migrate(PROBE)))
  assert.deepEqual(applied.filter((versions) => versions.length > 0), [[1, 2, 3]], 'one instance applied them all, the others found them applied')
  assert.deepEqual(applied.filter((versions) => versions.length === 0).length, 4)

  const [first] = instances
  assert.deepEqual(await recorded(first, 'probe'), [{ version: 1, count: 1 }, { version: 2, count: 1 }, { version: 3, count: 1 }])
  const runs = await first.query<{ migration: number }>('SELECT migration FROM probe_runs ORDER BY migration')
  assert.deepEqual(runs.rows.map((row) => row.migration), [1, 2, 3], 'each migration\'s SQL ran once')
  for (const pg of instances) assert.equal(await pg.version('probe'), 3)

  const later = await open(t, url)
  assert.deepEqual(await later.migrate(PROBE), [], 'nothing left to apply')
  assert.equal((await later.query('SELECT * FROM probe_runs')).rowCount, 3)
})

test('a build that knows fewer migrations than the database recorded refuses to run on it', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const pg = await open(t, url)
  await pg.migrate(PROBE)
  await pg.query("INSERT INTO doorsense_migrations (area, version) VALUES ('probe', 4)")
  await assert.rejects(pg.migrate(PROBE), (err: Error) => {
    assert.match(err.message, /has probe schema version 4, this build knows only 3: refusing to run an older build on a newer database/)
    assert.match(err.message, /database doorsense_/, 'names the database')
    return true
  })
  assert.deepEqual((await recorded(pg, 'probe')).map((row) => row.version), [1, 2, 3, 4], 'nothing changed')
  assert.equal(await pg.version('probe'), 4)
})

test('the migrations of one call are one transaction: a failing one leaves none of them applied', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const pg = await open(t, url)
  assert.equal(await pg.version('probe'), 0, 'no record table yet')
  await assert.rejects(pg.migrate({ area: 'probe', migrations: [PROBE.migrations[0], 'INSERT INTO no_such_table VALUES (1)'] }), /no_such_table/)
  assert.equal(await pg.version('probe'), 0)
  const table = await pg.query<{ exists: boolean }>("SELECT to_regclass('probe_runs') IS NOT NULL AS exists")
  assert.equal(table.rows[0].exists, false, 'the first migration rolled back with the second')
  assert.deepEqual(await pg.migrate(PROBE), [1, 2, 3], 'a fixed list applies from the start')
  // areas are versioned apart
  assert.deepEqual(await pg.migrate({ area: 'other', migrations: ['CREATE TABLE other_things (x integer)'] }), [1])
  assert.deepEqual([await pg.version('probe'), await pg.version('other')], [3, 1])
})

test('transaction() commits what its function did, or rolls all of it back and rethrows', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const pg = await open(t, url)
  await pg.query('CREATE TABLE items (n integer)')
  const result = await pg.transaction(async (client) => {
    await client.query('INSERT INTO items VALUES (1), (2)')
    return 'done'
  })
  assert.equal(result, 'done')
  await assert.rejects(pg.transaction(async (client) => {
    await client.query('INSERT INTO items VALUES (3)')
    throw new Error('changed my mind')
  }), /changed my mind/)
  assert.deepEqual((await pg.query<{ n: number }>('SELECT n FROM items ORDER BY n')).rows.map((row) => row.n), [1, 2])
  await pg.close()
  await pg.close() // twice is harmless
  assert.equal(pg.closed, true)
  assert.equal(pg.signal.aborted, true)
})

test('a server that does not answer fails open() with its host, port and database named, and never the password', async () => {
  // port 1 on loopback: refused at once
  const url = 'postgres://doorsense:s3cret-Pa55@127.0.0.1:1/fleet_db'
  const err = await Postgres.open(url, { connectTimeoutMs: 2000 }).then(() => undefined, (failure: unknown) => failure as Error)
  assert.ok(err instanceof Error, 'open() failed')
  assert.match(err.message, /^could not connect to PostgreSQL at 127\.0\.0\.1:1, database fleet_db as doorsense: .*ECONNREFUSED/)
  assert.doesNotMatch(inspect(err, { depth: 5 }), /s3cret-Pa55/, 'not in the message, the stack or the cause')
  // a password with characters a URL escapes: neither form shows
  const escaped = await Postgres.open(`postgres://doorsense:${encodeURIComponent('p@ss:w/rd%x')}@127.0.0.1:1/fleet_db`)
    .then(() => undefined, (failure: unknown) => failure as Error)
  assert.ok(escaped instanceof Error)
  assert.match(escaped.message, /at 127\.0\.0\.1:1, database fleet_db as doorsense/)
  assert.doesNotMatch(inspect(escaped, { depth: 5 }), /p@ss:w\/rd%x|p%40ss%3Aw%2Frd%25x/)
})

test('a database that does not exist fails open() naming it; a URL that is not one is refused without being repeated', async (t) => {
  const url = await freshDatabase(t)
  if (url === undefined) return
  const missing = new URL(url)
  missing.pathname = '/no_such_database'
  missing.password = 'hunter2-secret'
  const err = await Postgres.open(missing.href).then(() => undefined, (failure: unknown) => failure as Error)
  assert.ok(err instanceof Error)
  assert.match(err.message, /at 127\.0\.0\.1:5432, database no_such_database as postgres: database "no_such_database" does not exist/)
  assert.doesNotMatch(inspect(err, { depth: 5 }), /hunter2-secret/)
  await assert.rejects(Postgres.open('host=db password=hunter2-secret'), (failure: Error) => {
    assert.match(failure.message, /not a valid URL/)
    assert.doesNotMatch(failure.message, /hunter2/)
    return true
  })
})
