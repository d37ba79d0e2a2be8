/**
 * Retention on a really full disk (a small tmpfs filled to its last byte):
 * a delete needs room in SQLite's write-ahead log, which the disk denies, so
 * every pass used to fail and nothing ever freed room. The storage's reserve,
 * released when a pass finds the disk full, gives the deletes their room.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Storage } from '../../../core/storage.js'
import { FrameRetention } from '../../../plugins/rpi-servers/frame-retention.js'
import { FrameStore, type DecodedFrame } from '../../../plugins/rpi-servers/frame-store.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { fillDisk, freeBytes, mountSmallDisk } from '../../fixtures/small-disk.js'

const HOUR = 3_600_000
const frame: DecodedFrame = { features: new Float32Array(106).fill(1), encoding: 'features' }

test('retention on a really full disk: the pass that finds no room releases the reserve, and its deletes go through', (t) => {
  const disk = mountSmallDisk(t, 16)
  if ('skip' in disk) {
    t.skip(disk.skip)
    return
  }
  const dataDir = join(disk.dir, 'data')
  const storage = new Storage(dataDir, { reserveMb: 2 })
  t.after(() => storage.close())
  storage.migrate(RPI_SERVERS_SCHEMA)
  const store = new FrameStore(storage.db)
  const now = Date.UTC(2026, 0, 2)
  // a day-old backlog of ~4 MB, and fresh frames that stay
  for (let i = 0; i < 20; i++) store.insert(1, Array.from({ length: 400 }, () => frame), now - 48 * HOUR, () => 0)
  store.insert(2, Array.from({ length: 100 }, () => frame), now - HOUR, () => 0)
  // the log is given back to the disk (as after a restart), and the disk fills to its last byte
  storage.db.pragma('wal_checkpoint(TRUNCATE)')
  fillDisk(disk.dir)
  assert.equal(freeBytes(disk.dir), 0)

  const errors: unknown[] = []
  const retention = new FrameRetention(store, {
    hours: 24,
    perDevice: 0,
    now: () => now,
    onFull: () => storage.noticeFull(),
    onError: (err) => errors.push(err)
  })
  let deleted = 0
  do deleted += retention.step(); while (retention.running)
  assert.deepEqual(errors, [])
  assert.equal(deleted, 8000, 'the whole backlog went')
  assert.equal(store.count(1), 0)
  assert.equal(store.count(2), 100, 'the fresh frames stayed')
  assert.equal(storage.diskFull, true, 'the disk is still full: the database is held at its size')
  assert.equal(existsSync(join(dataDir, 'doorsense.reserve')), false, 'the reserve gave the deletes their room')
  // and the room they freed takes new frames without the file growing, once the log has been
  // checkpointed (the server's checkpointer does so every WAL_CHECKPOINT_MS): the log then starts
  // over in its own space; before that, whether it has room left depends on how the deletes were batched
  storage.db.pragma('wal_checkpoint(PASSIVE)')
  store.insert(3, Array.from({ length: 1000 }, () => frame), now, () => 0)
  assert.equal(store.count(3), 1000)
})
