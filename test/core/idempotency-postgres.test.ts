/**
 * Idempotency-Key with DATABASE_URL: two instances (apps on their own
 * DATA_DIR) over one PostgreSQL database share the keys, so a keyed request
 * retried on the other instance replays its first answer there, or is a 422
 * with another body (the store's contract on both engines:
 * idempotency-store.contract.test.ts). Skipped with the reason when
 * PostgreSQL is not running, outside CI.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { App } from '../../core/app.js'
import { PostgresIdempotencyStore } from '../../core/idempotency-store-postgres.js'
import { Postgres } from '../../core/postgres.js'
import { testDatabaseOrSkip } from '../fixtures/postgres.js'
import { rawPiFrames, stringified } from '../fixtures/frames.js'
import { sessionSlice } from '../fixtures/training.js'
import { ADMIN, buildTestApp } from '../helper.js'

const REPLAYED = 'idempotent-replayed'

function count (app: App, table: string): number {
  return (app.storage.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
}

test('two instances on one DATABASE_URL: a keyed request retried on the other replays there and stores nothing; another body is a 422', async (t) => {
  const database = await testDatabaseOrSkip(t)
  if (!database) return
  const a = await buildTestApp(t, { DATABASE_URL: database.url })
  const b = await buildTestApp(t, { DATABASE_URL: database.url })
  assert.ok(a.idempotency.store instanceof PostgresIdempotencyStore)

  const rows = sessionSlice(1)
  const samples = { ID: 4, samples: rows.map((row) => ({ angle: row.angle, frame: stringified(row) })) }
  const post = (app: App, body: object, key: string) => app.inject({
    method: 'POST', url: '/training/post/samples', payload: body, headers: { ...ADMIN, 'idempotency-key': key }
  })
  const key = randomUUID()
  const first = await post(a, samples, key)
  assert.equal(first.statusCode, 200, first.body)
  assert.equal(first.headers[REPLAYED], undefined)
  const retry = await post(b, samples, key)
  assert.equal(retry.statusCode, 200, retry.body)
  assert.equal(retry.headers[REPLAYED], 'true')
  assert.equal(retry.body, first.body, 'the same body, byte for byte')
  const pg = await Postgres.open(database.url, { max: 1 })
  t.after(() => pg.close())
  const stored = async (table: string) => Number((await pg.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n)
  assert.equal(await stored('training_samples'), 7, 'stored once, in the shared store, with the key')
  const changed = await post(b, { ...samples, samples: samples.samples.slice(1) }, key)
  assert.equal(changed.statusCode, 422)
  assert.match(changed.json().message, /for a different request on POST \/training\/post\/samples device 4/)

  // the same batch at once on both: stored once, whichever instance it reached first
  const frames = rawPiFrames().slice(0, 3)
  const framesKey = randomUUID()
  const postFrames = (app: App) => app.inject({
    method: 'POST', url: '/server/post/frames', payload: { ID: 3, frames }, headers: { 'idempotency-key': framesKey }
  })
  const answers = await Promise.all([postFrames(a), postFrames(b), postFrames(a), postFrames(b)])
  assert.deepEqual(answers.map((answer) => answer.statusCode), [200, 200, 200, 200])
  assert.equal(answers.filter((answer) => answer.headers[REPLAYED] === 'true').length, 3)
  assert.equal(count(a, 'rpi_frames') + count(b, 'rpi_frames'), 3)

  // the keys are in PostgreSQL, counted by either instance; pruning on one prunes them for both
  assert.equal(await stored('idempotency_keys'), 2)
  assert.equal(await a.idempotency.store.count(), 2)
  assert.equal(await b.idempotency.store.count(), 2)
})

test('without DATABASE_URL the keys stay in each instance\'s SQLite: a retry on another instance is a new request', async (t) => {
  const a = await buildTestApp(t)
  const b = await buildTestApp(t)
  assert.equal(a.idempotency.store instanceof PostgresIdempotencyStore, false)
  const key = randomUUID()
  const post = (app: App) => app.inject({
    method: 'POST', url: '/server/post/frames', payload: { ID: 1, frames: rawPiFrames().slice(0, 2) }, headers: { 'idempotency-key': key }
  })
  assert.equal((await post(a)).headers[REPLAYED], undefined)
  assert.equal((await post(b)).headers[REPLAYED], undefined)
  assert.equal((await post(a)).headers[REPLAYED], 'true')
  assert.equal(count(a, 'idempotency_keys'), 1)
})
