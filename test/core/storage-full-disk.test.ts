/**
 * A really full disk (a small tmpfs, filled to its last byte): the server
 * survives it. The reserve in DATA_DIR is released as the disk fills, the
 * database is held at its size, frames keep coming (dropping the oldest
 * unlabelled ones), deletes work with not a byte free, and once the disk has
 * room again the reserve is written anew and the database may grow.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RESERVE_FILE } from '../../core/storage.js'
import { rawPiFrames } from '../fixtures/frames.js'
import { fillDisk, freeBytes, mountSmallDisk } from '../fixtures/small-disk.js'
import { sessionCsv, sessionSlice } from '../fixtures/training.js'
import { ADMIN, buildTestApp } from '../helper.js'

const MIB = 1024 * 1024

test('a really full disk: frames keep coming, delete_samples answers, and the reserve comes back once there is room', async (t) => {
  const disk = mountSmallDisk(t, 24)
  if ('skip' in disk) {
    t.skip(disk.skip)
    return
  }
  const dataDir = join(disk.dir, 'data')
  // what else lives on the disk, and is cleaned up in the end
  const others = join(disk.dir, 'others')
  writeFileSync(others, Buffer.alloc(8 * MIB))
  // checkpoints every 20 ms keep up with a Pi posting every 20 ms, as the default second keeps up with real Pis
  const app = await buildTestApp(t, { STORAGE_RESERVE_MB: '4', WAL_CHECKPOINT_MS: '20' }, { dataDir })
  const imported = await app.inject({
    method: 'POST',
    url: '/training/post/import',
    headers: { ...ADMIN, 'content-type': 'text/csv' },
    payload: sessionCsv(sessionSlice(50))
  })
  assert.equal(imported.statusCode, 200, imported.body)

  // one Pi fills the disk (~20 MB of frames for the 12 MiB left), and goes on posting
  const frames = rawPiFrames().slice(0, 300)
  let afterFull = 0
  for (let batch = 0; afterFull < 10; batch++) {
    assert.ok(batch < 300, `the disk never filled (${freeBytes(disk.dir)} bytes free)`)
    const response = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 7, frames } })
    assert.equal(response.statusCode, 200, `batch ${batch} (${freeBytes(disk.dir)} bytes free): ${response.body}`)
    if (app.storage.diskFull) afterFull++
    await sleep(20)
  }
  const reserve = join(dataDir, RESERVE_FILE)
  assert.equal(existsSync(reserve), false, 'the reserve was released')

  // whatever else shares the disk takes the rest: not a byte is left
  const filler = fillDisk(disk.dir)
  assert.equal(freeBytes(disk.dir), 0)
  const deleted = await app.inject({ method: 'POST', url: '/training/post/delete_samples', headers: ADMIN, payload: { angle: 0 } })
  assert.equal(deleted.statusCode, 200, deleted.body)
  assert.equal(deleted.json().deleted, 50)
  for (let batch = 0; batch < 3; batch++) {
    const other = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 8, frames } })
    assert.equal(other.statusCode, 200, `device 8 on a disk with ${freeBytes(disk.dir)} bytes free: ${other.body}`)
  }
  assert.equal(freeBytes(disk.dir), 0, 'and the disk is still full')

  // room again: the reserve is written anew and the hold lifted, by itself
  rmSync(filler)
  rmSync(others)
  for (let waited = 0; app.storage.diskFull; waited += 50) {
    assert.ok(waited < 10_000, 'the storage never saw the room')
    await sleep(50)
  }
  assert.equal(statSync(reserve).size, 4 * MIB)
  const pageSize = app.storage.db.pragma('page_size', { simple: true }) as number
  assert.ok(app.storage.roomBytes() > 4 * MIB, `the database may grow again (${app.storage.roomBytes() / pageSize} pages of room)`)
  await app.close()
})
