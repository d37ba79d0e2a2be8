import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { buildApp } from '../../core/app.js'
import { DATABASE_FILE, databaseRoomBytes, RESERVE_FILE, Storage, type AreaSchema, type Migration } from '../../core/storage.js'
import { buildTestApp, tempDir, testConfig } from '../helper.js'

const DOORS: Migration[] = [
  'CREATE TABLE doors (id INTEGER PRIMARY KEY, name TEXT NOT NULL)',
  "INSERT INTO doors (name) VALUES ('front')",
  (db) => { db.prepare('ALTER TABLE doors ADD COLUMN angle REAL NOT NULL DEFAULT 0').run() }
]

/** The doors area with its first `versions` migrations (all by default). */
function doors (versions = DOORS.length): AreaSchema {
  return { area: 'doors', migrations: DOORS.slice(0, versions) }
}

/** A Storage on `dir`, closed after the test. */
function open (t: import('node:test').TestContext, dir: string): Storage {
  const storage = new Storage(dir)
  t.after(() => storage.close())
  return storage
}

function tableNames (db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((row) => row.name)
}

test('migrations run in order, each once', (t) => {
  const dir = tempDir(t)
  const first = open(t, dir)
  assert.deepEqual(first.migrate(doors()), [1, 2, 3])
  assert.equal(first.version('doors'), 3)
  // migration 3 needed 1's table and 2's row: order was kept
  assert.deepEqual(first.db.prepare('SELECT name, angle FROM doors').all(), [{ name: 'front', angle: 0 }])
  // the same list again in the same process applies nothing
  assert.deepEqual(first.migrate(doors()), [])
  first.close()

  // a second open of the same file applies nothing and keeps the data
  const second = open(t, dir)
  assert.deepEqual(second.migrate(doors()), [])
  assert.equal((second.db.prepare('SELECT COUNT(*) AS n FROM doors').get() as { n: number }).n, 1, 'migration 2 ran twice')
})

test('a list that grew at its end applies only the new migrations', (t) => {
  const dir = tempDir(t)
  const storage = open(t, dir)
  assert.deepEqual(storage.migrate(doors(1)), [1])
  assert.deepEqual(storage.migrate(doors()), [2, 3])
  assert.equal(storage.version('doors'), 3)
})

test('versions are kept per area', (t) => {
  const storage = open(t, tempDir(t))
  storage.migrate(doors())
  assert.equal(storage.version('devices'), 0)
  assert.deepEqual(storage.migrate({ area: 'devices', migrations: ['CREATE TABLE devices (id INTEGER PRIMARY KEY)'] }), [1])
  assert.equal(storage.version('devices'), 1)
  assert.equal(storage.version('doors'), 3)
  assert.deepEqual(tableNames(storage.db).filter((name) => name !== 'schema_migrations'), ['devices', 'doors'])
})

test('a failing migration rolls back all of its work and leaves the version unchanged', (t) => {
  const storage = open(t, tempDir(t))
  storage.migrate(doors(1))
  const broken: Migration[] = [
    DOORS[0],
    // the first statement succeeds, the second fails: neither may remain
    'CREATE TABLE hinges (id INTEGER PRIMARY KEY); INSERT INTO no_such_table VALUES (1)',
    'CREATE TABLE never (id INTEGER)'
  ]
  assert.throws(() => storage.migrate({ area: 'doors', migrations: broken }), /no_such_table/)
  assert.equal(storage.version('doors'), 1)
  assert.ok(!tableNames(storage.db).includes('hinges'), 'the failed migration left a table behind')
  assert.ok(!tableNames(storage.db).includes('never'), 'a migration after the failed one ran')

  const throwing: Migration[] = [DOORS[0], (db) => {
    db.prepare("INSERT INTO doors (name) VALUES ('back')").run()
    throw new Error('migration bug')
  }]
  assert.throws(() => storage.migrate({ area: 'doors', migrations: throwing }), /migration bug/)
  assert.equal(storage.version('doors'), 1)
  assert.equal((storage.db.prepare('SELECT COUNT(*) AS n FROM doors').get() as { n: number }).n, 0)
})

test('a database newer than this build is refused, naming the area and both versions', (t) => {
  const dir = tempDir(t)
  const newer = open(t, dir)
  newer.migrate(doors())
  newer.close()
  const older = open(t, dir)
  assert.throws(() => older.migrate(doors(2)), /doors schema version 3, this build knows only 2/)
  assert.equal(older.version('doors'), 3)
})

test('the database is in WAL mode, in DATA_DIR, with foreign keys on', (t) => {
  const dir = tempDir(t)
  const storage = open(t, dir)
  assert.equal(storage.db.pragma('journal_mode', { simple: true }), 'wal')
  assert.equal(storage.db.pragma('foreign_keys', { simple: true }), 1)
  assert.equal(storage.db.name, join(dir, DATABASE_FILE))
  assert.ok(existsSync(join(dir, DATABASE_FILE)))
})

test('the app decorates storage and closes it on app.close()', async (t) => {
  const app = await buildTestApp(t)
  const db = app.storage.db
  assert.ok(db.open)
  // the areas' migrations were applied at start and recorded
  const areas = db.prepare('SELECT DISTINCT area FROM schema_migrations').all()
  assert.ok(Array.isArray(areas))
  await app.close()
  assert.equal(db.open, false)
  assert.throws(() => db.prepare('SELECT 1'), /not open/)
})

test('the app refuses to start on a database newer than its build', async (t) => {
  const app = await buildTestApp(t)
  const areas = app.storage.db.prepare('SELECT area, MAX(version) AS version FROM schema_migrations GROUP BY area')
    .all() as Array<{ area: string, version: number }>
  if (areas.length === 0) {
    t.skip('no area has migrations yet')
    return
  }
  const { area, version } = areas[0]
  const dataDir = tempDir(t)
  const first = await buildTestApp(t, {}, { dataDir })
  first.storage.db.prepare('INSERT INTO schema_migrations (area, version) VALUES (?, ?)').run(area, version + 1)
  await first.close()
  // the refusal surfaces from buildApp (plugins are awaited there) or at ready()
  await assert.rejects(async () => {
    const second = await buildApp(testConfig(dataDir))
    try {
      await second.ready()
    } finally {
      await second.close()
    }
  }, new RegExp(`${area} schema version ${version + 1}, this build knows only ${version}`))
})

test('a DATA_DIR the storage creates is 0700; the database and its -wal and -shm are 0600, an existing 0644 database is tightened', (t) => {
  const root = tempDir(t)
  const dataDir = join(root, 'data')
  const storage = open(t, dataDir)
  storage.migrate(doors()) // a write: the -wal and -shm exist now
  const file = join(dataDir, DATABASE_FILE)
  const mode = (path: string) => statSync(path).mode & 0o777
  // the umask (0022 here) and SQLite's own default would have left 0755 and 0644
  assert.equal(mode(dataDir), 0o700)
  for (const path of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(path), 0o600, path)
  storage.close()

  // a database (and a -wal left by a crash) an older build wrote 0644
  const old = join(root, 'old')
  open(t, old).close()
  chmodSync(join(old, DATABASE_FILE), 0o644)
  writeFileSync(join(old, `${DATABASE_FILE}-wal`), '', { mode: 0o644 })
  chmodSync(join(old, `${DATABASE_FILE}-wal`), 0o644)
  const reopened = open(t, old)
  assert.deepEqual(reopened.migrate(doors()), [1, 2, 3])
  assert.equal(mode(join(old, DATABASE_FILE)), 0o600)
  assert.equal(mode(join(old, `${DATABASE_FILE}-wal`)), 0o600)
  assert.equal(mode(join(old, `${DATABASE_FILE}-shm`)), 0o600)
})

test('the disk reserve: written 0600 at start, cut back to a smaller size, removed at 0, and left alone by a Storage not told its size (the CLI)', (t) => {
  const dir = tempDir(t)
  const reserve = join(dir, RESERVE_FILE)
  const MIB = 1024 * 1024
  const mode = (path: string) => statSync(path).mode & 0o777
  const storage = new Storage(dir, { reserveMb: 2 })
  assert.equal(storage.diskFull, false)
  storage.close()
  assert.equal(statSync(reserve).size, 2 * MIB)
  assert.equal(mode(reserve), 0o600)
  new Storage(dir, { reserveMb: 1 }).close()
  assert.equal(statSync(reserve).size, MIB)
  new Storage(dir).close()
  assert.equal(statSync(reserve).size, MIB, 'the server\'s reserve is not the CLI\'s to remove')
  new Storage(dir, { reserveMb: 0 }).close()
  assert.equal(existsSync(reserve), false)
})

test('room: unbounded without a cap (only the disk bounds the database, no query is made), the cap less the pages used with one', (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  assert.equal(storage.roomBytes(), Number.POSITIVE_INFINITY)
  storage.db.exec('CREATE TABLE filler (x BLOB)')
  storage.db.prepare('INSERT INTO filler VALUES (?)').run(Buffer.alloc(64 * 1024))
  storage.setMaxBytes(2 * 1024 * 1024)
  const room = storage.roomBytes()
  assert.equal(room, databaseRoomBytes(storage.db))
  assert.ok(room > 0 && room < 2 * 1024 * 1024 - 64 * 1024, `${room} bytes of room`)
})
