/**
 * Frames stored compactly (rpi_frames.layout, docs/storage.md): a raw frame
 * as its signed 8-bit values as received, a frame posted as features as 106
 * float32. Rows a database held before the layout column stay as they were
 * and read back beside the new ones; the features of a raw row are the
 * decoder's, bit for bit. And the room a frame takes, measured on real
 * database files: 10,000 raw Pi frames stored the old way and the new way.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { DATABASE_FILE, Storage } from '../../../core/storage.js'
import { parseFrame, parseFrameWithEncoding } from '../../../domain/frames.js'
import { FrameLayout, FrameStore, storedFrame, type DecodedFrame } from '../../../plugins/rpi-servers/frame-store.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { esp32Lines, rawPiFrames } from '../../fixtures/frames.js'
import { sessionRows } from '../../fixtures/training.js'
import { tempDir } from '../../helper.js'

/** The area's tables as a build before the layout column made them. */
const BEFORE_LAYOUT = { area: RPI_SERVERS_SCHEMA.area, migrations: RPI_SERVERS_SCHEMA.migrations.slice(0, -1) }
const T0 = Date.UTC(2026, 2, 1)

/** What the FrameStore before the layout column ran for each frame: its features as float32, whatever the encoding. */
function insertTheOldWay (db: Database.Database, device: number, frames: readonly DecodedFrame[], receivedAt: number): void {
  const insert = db.prepare('INSERT INTO rpi_frames (device, received_at, encoding, features) VALUES (?, ?, ?, ?)')
  db.transaction(() => {
    for (const { encoding, features: f } of frames) insert.run(device, receivedAt, encoding, Buffer.from(f.buffer, f.byteOffset, f.byteLength))
  })()
}

const inputs: unknown[] = [...rawPiFrames().slice(0, 3), ...esp32Lines().slice(0, 2), Array.from(sessionRows()[0].features)]

test('rows stored before the layout column read back as they were, beside raw rows stored as received; the features are the decoder\'s', (t) => {
  const dir = tempDir(t)
  const old = new Storage(dir)
  old.migrate(BEFORE_LAYOUT)
  insertTheOldWay(old.db, 3, inputs.map((input) => parseFrameWithEncoding(input)), T0)
  old.close()

  const storage = new Storage(dir)
  t.after(() => storage.close())
  assert.deepEqual(storage.migrate(RPI_SERVERS_SCHEMA), [RPI_SERVERS_SCHEMA.migrations.length], 'only the layout column is added')
  const store = new FrameStore(storage.db)
  const decoded = inputs.map((input) => parseFrameWithEncoding(input))
  assert.deepEqual(decoded.map((frame) => frame.raw?.length), [108, 108, 108, 128, 128, undefined], 'the decoder hands over raw values')
  store.insert(3, decoded, T0 + 1000, () => undefined)

  const rows = storage.db.prepare('SELECT layout, length(features) AS bytes FROM rpi_frames ORDER BY id').all()
  assert.deepEqual(rows, [
    ...inputs.map(() => ({ layout: FrameLayout.float32, bytes: 424 })),
    { layout: FrameLayout.int8, bytes: 108 }, { layout: FrameLayout.int8, bytes: 108 }, { layout: FrameLayout.int8, bytes: 108 },
    { layout: FrameLayout.int8, bytes: 128 }, { layout: FrameLayout.int8, bytes: 128 },
    { layout: FrameLayout.float32, bytes: 424 }
  ])
  const listed = store.list(3)
  assert.equal(listed.length, 2 * inputs.length)
  listed.forEach((frame, i) => {
    const input = inputs[i % inputs.length]
    // bit for bit the features the decoder made when the frame came, old row or new
    assert.deepEqual(frame.features, parseFrame(input), `frame ${i}`)
    assert.equal(frame.encoding, decoded[i % inputs.length].encoding)
    assert.equal(frame.receivedAt, i < inputs.length ? T0 : T0 + 1000)
  })
  assert.deepEqual(listed.map((frame) => frame.raw === undefined), [...inputs.map(() => true), false, false, false, false, false, true])
  assert.deepEqual(Array.from(listed[inputs.length].raw ?? []), rawPiFrames()[0], 'a raw row keeps the values as received')
  assert.throws(() => storedFrame(2, new Uint8Array(108)), /layout 2 and 108 bytes/)
  assert.throws(() => storedFrame(FrameLayout.float32, new Uint8Array(108)), /layout 0 and 108 bytes/)
})

test('room per stored frame, on real database files: 10,000 raw Pi frames in batches of 20, the old way (float32) and as received', (t) => {
  const frames = 10_000
  const batch = 20
  const pool = rawPiFrames()
  const batches = Array.from({ length: frames / batch }, (_, b) =>
    Array.from({ length: batch }, (_, i) => parseFrameWithEncoding(pool[(b * batch + i) % pool.length])))
  const measure = (store: (db: Database.Database, frames: DecodedFrame[], receivedAt: number) => void, schema: typeof RPI_SERVERS_SCHEMA) => {
    const dir = tempDir(t)
    const storage = new Storage(dir)
    storage.migrate(schema)
    const empty = () => {
      storage.db.exec('VACUUM')
      storage.db.pragma('wal_checkpoint(TRUNCATE)')
      return statSync(join(dir, DATABASE_FILE)).size
    }
    const before = empty()
    // a Pi's batches 50 ms a frame apart: received_at as the server sets it (ms since the epoch)
    batches.forEach((frames, b) => store(storage.db, frames, T0 + b * batch * 50))
    const file = empty() - before
    const pages = storage.db.prepare("SELECT SUM(pgsize) AS bytes, SUM(payload) AS payload FROM dbstat WHERE name LIKE 'rpi_frames%'")
      .get() as { bytes: number, payload: number }
    storage.close()
    return { file: file / frames, pages: pages.bytes / frames, payload: pages.payload / frames }
  }
  const old = measure((db, frames, at) => insertTheOldWay(db, 7, frames, at), BEFORE_LAYOUT)
  const now = measure((db, frames, at) => new FrameStore(db).insert(7, frames, at, () => undefined), RPI_SERVERS_SCHEMA)
  const shown = (room: typeof old) => `${room.file.toFixed(0)} bytes of file, ${room.pages.toFixed(0)} of table and index pages ` +
    `(${room.payload.toFixed(0)} of payload)`
  t.diagnostic(`a raw Pi frame stored as 106 float32 (before): ${shown(old)}`)
  t.diagnostic(`a raw Pi frame stored as received (layout 1): ${shown(now)}; ${(old.file / now.file).toFixed(2)} × less`)
  assert.ok(old.file > 450 && old.pages > 450, `the old way takes ~500 bytes a frame: ${shown(old)}`)
  assert.ok(now.file < 0.4 * old.file && now.pages < 0.4 * old.pages, `as received: ${shown(now)}, against ${shown(old)}`)
})

test('a batch past one statement\'s rows (250 frames, mixed layouts) is stored whole and in order; a rolled back batch stores none', (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  storage.migrate(RPI_SERVERS_SCHEMA)
  const store = new FrameStore(storage.db)
  const batch = Array.from({ length: 250 }, (_, i) => parseFrameWithEncoding(inputs[i % inputs.length]))
  store.insert(4, batch, T0, () => undefined)
  const listed = store.list(4, 1000)
  assert.equal(listed.length, 250)
  listed.forEach((frame, i) => {
    assert.equal(frame.encoding, batch[i].encoding, `frame ${i}`)
    assert.deepEqual(frame.features, batch[i].features, `frame ${i}`)
  })
  // the alongside write fails: the whole batch (three statements) rolls back with it
  assert.throws(() => store.insert(5, batch, T0, () => { throw new Error('the labelled samples could not be written') }), /could not be written/)
  assert.equal(store.count(5), 0)
})
