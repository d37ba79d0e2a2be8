/**
 * Databases in the field outlive the build that wrote them: area names and
 * version numbers are persisted in `schema_migrations`, so a database a
 * released build wrote (test/fixtures/databases/) must open with this one,
 * its rows intact and readable, and a migration it ran is never edited.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { PROJECT_ROOT } from '../../core/project.js'
import { DATABASE_FILE, Storage } from '../../core/storage.js'
import { parseFrame } from '../../domain/frames.js'
import { FrameStore } from '../../plugins/rpi-servers/frame-store.js'
import type { KnownDeviceList } from '../../schemas/rpi-servers.js'
import type { CaptureStatus, DatasetSummary } from '../../schemas/training.js'
import { declaredSchemas } from '../fixtures/area-schemas.js'
import { rawPiFrames } from '../fixtures/frames.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'
import { ADMIN, buildTestApp, tempDir } from '../helper.js'

const RELEASE_0_1_0 = join(PROJECT_ROOT, 'test', 'fixtures', 'databases', 'doorsense-0.1.0.sql')

interface MigrationRow { area: string, version: number, applied_at: string }

/** A DATA_DIR holding the database `dump` describes. */
function restored (t: TestContext, dump: string): string {
  const dataDir = tempDir(t)
  const db = new Database(join(dataDir, DATABASE_FILE))
  db.exec(readFileSync(dump, 'utf8'))
  db.close()
  return dataDir
}

function migrationRows (db: Database.Database): MigrationRow[] {
  return db.prepare('SELECT area, version, applied_at FROM schema_migrations ORDER BY area, version').all() as MigrationRow[]
}

/** The tables and indexes, with the SQL text SQLite keeps for each. */
function schemaText (db: Database.Database): unknown[] {
  return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all()
}

test('a database doorsense 0.1.0 wrote opens with this build: no migration runs again, and its rows read back and take new ones', async (t) => {
  const dataDir = restored(t, RELEASE_0_1_0)
  const before = new Database(join(dataDir, DATABASE_FILE), { readonly: true })
  const released = migrationRows(before)
  before.close()

  const app = await buildTestApp(t, {}, { dataDir })
  const db = app.storage.db
  // a migration that ran again would have failed on its existing table, or recorded a new time
  const applied = new Map(migrationRows(db).map((row) => [`${row.area} ${row.version}`, row.applied_at]))
  for (const row of released) assert.equal(applied.get(`${row.area} ${row.version}`), row.applied_at, `${row.area} ${row.version}`)
  for (const { schema } of await declaredSchemas()) assert.equal(app.storage.version(schema.area), schema.migrations.length, schema.area)
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
  assert.deepEqual(db.pragma('foreign_key_check'), [])

  const known = (await app.inject({ url: '/app/get/known_servers' })).json<KnownDeviceList>()
  assert.deepEqual(known.map(({ id, name, keepAlives }) => ({ id, name, keepAlives })), [{ id: 3, name: 'front-door', keepAlives: 1 }])
  const dataset = (await app.inject({ url: '/training/get/dataset' })).json<DatasetSummary>()
  assert.equal(dataset.total, 9)
  assert.deepEqual(dataset.devices, [{ device: 3, count: 2 }, { device: 4, count: 7 }])
  const capture = (await app.inject({ url: '/training/get/capture/3' })).json<CaptureStatus>()
  assert.deepEqual([capture.state, capture.angle, capture.framesStored], ['cancelled', 45, 2])
  // the import recorded then still refuses the same file for the same device
  const again = await app.inject({
    method: 'POST',
    url: '/training/post/import?ID=4',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(1))
  })
  assert.equal(again.statusCode, 409, again.body)
  assert.equal(again.json().code, 'DS_DUPLICATE_IMPORT')

  // a keyed batch is stored after the frames already there, and its key recorded with the columns added since the table was made
  const batch = { ID: 3, frames: rawPiFrames().slice(2, 5) }
  const headers = { 'idempotency-key': 'after-upgrade' }
  const first = await app.inject({ method: 'POST', url: '/server/post/frames', headers, payload: batch })
  assert.equal(first.statusCode, 200, first.body)
  const replay = await app.inject({ method: 'POST', url: '/server/post/frames', headers, payload: batch })
  assert.equal(replay.headers['idempotent-replayed'], 'true')
  assert.equal(replay.body, first.body)
  const frames = db.prepare('SELECT id FROM rpi_frames WHERE device = 3 ORDER BY id').all() as Array<{ id: number }>
  assert.deepEqual(frames.map((row) => row.id), [1, 2, 3, 4, 5])
  // 0.1.0 stored the first two raw Pi frames as 106 float32; this build stores raw frames as received: both read back alike
  const stored = new FrameStore(db).list(3)
  assert.deepEqual(stored.map((frame) => frame.raw === undefined), [true, true, false, false, false])
  stored.forEach((frame, i) => assert.deepEqual(frame.features, parseFrame(rawPiFrames()[i]), `frame ${frame.id}`))
})

test('the migrations 0.1.0 ran are still this build\'s, under the same area names: run up to the versions it recorded, they make the same tables', async (t) => {
  const released = new Database(join(restored(t, RELEASE_0_1_0), DATABASE_FILE), { readonly: true })
  t.after(() => released.close())
  const versions = new Map(migrationRows(released).map((row) => [row.area, row.version]))
  const declared = new Map((await declaredSchemas()).map(({ schema }) => [schema.area, schema]))
  assert.deepEqual([...versions.keys()].filter((area) => !declared.has(area)), [], 'an area 0.1.0 recorded is gone or renamed')

  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  for (const [area, version] of versions) storage.migrate({ area, migrations: declared.get(area)!.migrations.slice(0, version) })
  assert.deepEqual(schemaText(storage.db), schemaText(released))
})
