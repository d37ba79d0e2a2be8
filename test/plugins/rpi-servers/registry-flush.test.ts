/**
 * Coalesced registry writes: a keep-alive answers from memory and its
 * last-seen time and count reach SQLite with the next flush (at most
 * REGISTRY_FLUSH_MS later) or on close; a new Pi, a new name or address is
 * written before the answer. Real SQLite files in temp dirs, read back
 * through their own connection, and real restarts of the whole app.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import type { App } from '../../../core/app.js'
import { DATABASE_FILE, Storage } from '../../../core/storage.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { DeviceRegistry } from '../../../plugins/rpi-servers/registry.js'
import { buildTestApp, tempDir } from '../../helper.js'

interface Row { id: number, name: string, addr: string, last_seen: number, keep_alives: number }

/** The rows as on disk, through a connection of their own (what a crash right now would leave). */
function rowsOnDisk (dir: string): Row[] {
  const db = new Database(join(dir, DATABASE_FILE), { fileMustExist: true })
  try {
    return db.prepare('SELECT id, name, addr, last_seen, keep_alives FROM rpi_devices ORDER BY id').all() as Row[]
  } finally {
    db.close()
  }
}

function openRegistry (
  t: TestContext,
  dir: string,
  options: { flushMs: number, now?: () => number, onFlushError?: (err: unknown) => void }
): { storage: Storage, registry: DeviceRegistry } {
  const storage = new Storage(dir)
  storage.migrate(RPI_SERVERS_SCHEMA)
  const registry = new DeviceRegistry(storage.db, { staleAfterMs: 30_000, ...options })
  t.after(() => storage.close())
  return { storage, registry }
}

async function waitFor (condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

test('a new Pi and a new name or address are written at once; last-seen times and counts wait for the flush, all in one', async (t) => {
  const dir = tempDir(t)
  const clock = { now: Date.UTC(2024, 0, 1) }
  const { registry } = openRegistry(t, dir, { flushMs: 150, now: () => clock.now })
  const first = clock.now
  registry.keepAlive({ id: 3, name: 'hall', addr: '10.0.0.3' })
  registry.touch(4, '10.0.0.4') // frames before any keep-alive: known, nameless
  assert.deepEqual(rowsOnDisk(dir), [
    { id: 3, name: 'hall', addr: '10.0.0.3', last_seen: first, keep_alives: 1 },
    { id: 4, name: '', addr: '10.0.0.4', last_seen: first, keep_alives: 0 }
  ], 'new Pis are on disk before the call returns')

  clock.now += 1000
  const { device } = registry.keepAlive({ id: 3, name: 'hall', addr: '10.0.0.3' })
  registry.touch(4, '10.0.0.4')
  assert.equal(device.lastSeen, new Date(clock.now).toISOString())
  assert.deepEqual(registry.known().map((d) => [d.id, d.lastSeen, d.keepAlives]), [
    [3, new Date(clock.now).toISOString(), 2],
    [4, new Date(clock.now).toISOString(), 0]
  ], 'memory is current')
  assert.deepEqual(rowsOnDisk(dir).map((row) => [row.id, row.last_seen, row.keep_alives]), [[3, first, 1], [4, first, 0]], 'the disk waits for the flush')
  assert.equal(registry.unflushed, 2)

  await waitFor(() => registry.unflushed === 0)
  assert.deepEqual(rowsOnDisk(dir).map((row) => [row.id, row.last_seen, row.keep_alives]), [[3, clock.now, 2], [4, clock.now, 0]], 'flushed')

  clock.now += 1000
  registry.keepAlive({ id: 3, name: 'front hall', addr: '10.0.0.33' })
  assert.deepEqual(rowsOnDisk(dir)[0], { id: 3, name: 'front hall', addr: '10.0.0.33', last_seen: clock.now, keep_alives: 3 },
    'a rename is written at once, with its count')
  assert.equal(registry.unflushed, 0)
})

test('a flush that fails keeps its rows dirty, reports the error and succeeds on a later try', async (t) => {
  const dir = tempDir(t)
  const errors: unknown[] = []
  const { storage, registry } = openRegistry(t, dir, { flushMs: 40, onFlushError: (err) => errors.push(err) })
  registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
  // the disk refuses every last-seen update for a while (a real SQLite error, as from a full disk)
  storage.db.exec("CREATE TEMP TRIGGER refuse BEFORE UPDATE ON rpi_devices BEGIN SELECT RAISE(FAIL, 'no room'); END")
  registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
  await waitFor(() => errors.length >= 2)
  assert.match(String(errors[0]), /no room/)
  assert.equal(registry.unflushed, 1, 'still waiting to be written')
  assert.equal(rowsOnDisk(dir)[0].keep_alives, 1)
  storage.db.exec('DROP TRIGGER refuse')
  await waitFor(() => registry.unflushed === 0)
  assert.equal(rowsOnDisk(dir)[0].keep_alives, 2, 'written once the disk takes it again')
})

test('REGISTRY_FLUSH_MS=0 writes every keep-alive at once (the previous design)', (t) => {
  const dir = tempDir(t)
  const { registry } = openRegistry(t, dir, { flushMs: 0 })
  for (let i = 0; i < 3; i++) registry.keepAlive({ id: 5, name: 'attic', addr: '10.0.0.5' })
  assert.equal(rowsOnDisk(dir)[0].keep_alives, 3)
  assert.equal(registry.unflushed, 0)
})

const keepAlive = (app: App, id: number, name: string) =>
  app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: name, ID: id } })

test('keep-alives show in list_of_servers at once, reach the disk within REGISTRY_FLUSH_MS and on close, and a restart keeps them', async (t) => {
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { REGISTRY_FLUSH_MS: '300' }, { dataDir })
  assert.equal((await keepAlive(app, 7, 'kitchen')).statusCode, 200)
  const firstSeen = rowsOnDisk(dataDir)[0].last_seen
  await sleep(5)
  const second = await keepAlive(app, 7, 'kitchen')
  assert.equal(second.statusCode, 200)
  const answeredAt = Date.parse(second.json().lastSeen)
  const listed = (await app.inject({ url: '/app/get/list_of_servers' })).json() as Array<{ id: number, lastSeen: string }>
  assert.deepEqual(listed.map((pi) => [pi.id, Date.parse(pi.lastSeen)]), [[7, answeredAt]], 'the list answers from memory')
  assert.deepEqual(rowsOnDisk(dataDir).map((row) => [row.last_seen, row.keep_alives]), [[firstSeen, 1]], 'not on disk yet')

  await waitFor(() => rowsOnDisk(dataDir)[0].keep_alives === 2, 3000)
  assert.equal(rowsOnDisk(dataDir)[0].last_seen, answeredAt, 'on disk after the flush interval')

  await sleep(5)
  const third = await keepAlive(app, 7, 'kitchen')
  const lastAnswer = Date.parse(third.json().lastSeen)
  await app.close() // at once: long before the next flush would run
  assert.deepEqual(rowsOnDisk(dataDir).map((row) => [row.last_seen, row.keep_alives]), [[lastAnswer, 3]], 'written on close')

  const restarted = await buildTestApp(t, { REGISTRY_FLUSH_MS: '300' }, { dataDir })
  const known = (await restarted.inject({ url: '/app/get/known_servers' })).json() as Array<{
    id: number, name: string, lastSeen: string, keepAlives: number, live: boolean
  }>
  assert.deepEqual(known.map((pi) => [pi.id, pi.name, Date.parse(pi.lastSeen), pi.keepAlives, pi.live]), [[7, 'kitchen', lastAnswer, 3, false]])
  assert.deepEqual((await restarted.inject({ url: '/app/get/list_of_servers' })).json(), [], 'none live after a restart')
})
