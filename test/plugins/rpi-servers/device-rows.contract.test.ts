/**
 * The contract of the registry's rows (device-rows.ts), the same cases
 * against both stores: SQLite in a temp file, PostgreSQL in a fresh database
 * (skipped with the reason when it is not running, outside CI). A "restart"
 * is a new store over the same database; the rows are checked as a
 * connection of the test's own reads them. Then what only the asynchronous
 * store has: a queue that outlasts a refusing database, and says what it
 * lost if the pool closes first.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import pg from 'pg'
import { Postgres } from '../../../core/postgres.js'
import { DATABASE_FILE, Storage } from '../../../core/storage.js'
import { PostgresDeviceRows, SqliteDeviceRows, type DeviceRow, type DeviceRowStore } from '../../../plugins/rpi-servers/device-rows.js'
import { DeviceRegistry, type DeviceRegistryOptions } from '../../../plugins/rpi-servers/registry.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { testDatabaseOrSkip } from '../../fixtures/postgres.js'
import { tempDir } from '../../helper.js'

/** One test's database, through either engine. */
interface Backend {
  /** A store over the database, as a process starting now opens it. */
  open (): Promise<DeviceRowStore>
  /** Closes the database under the store opened last (a process stopping, or its pool closing). */
  close (): Promise<void>
  /** The rows as the database holds them now, by ID, read through a connection of the test's own. */
  rows (): Promise<DeviceRow[]>
  /** Makes the database refuse every update of a row (as a full disk does) until the returned function is called. */
  refuseUpdates (): Promise<() => Promise<void>>
}

interface Engine {
  name: 'sqlite' | 'postgres'
  /** A backend on a fresh database, or undefined once the test is skipped. */
  backend (t: TestContext): Promise<Backend | undefined>
}

const ORDER_BY_ID = 'SELECT id, name, display_name, addr, first_seen, last_seen, keep_alives FROM rpi_devices ORDER BY id'

const sqlite: Engine = {
  name: 'sqlite',
  async backend (t) {
    const dir = tempDir(t)
    let storage: Storage | undefined
    return {
      async open () {
        storage = new Storage(dir)
        storage.migrate(RPI_SERVERS_SCHEMA)
        const opened = storage
        t.after(() => opened.close())
        return new SqliteDeviceRows(storage.db)
      },
      async close () {
        storage?.close()
      },
      async rows () {
        const db = new Database(join(dir, DATABASE_FILE), { readonly: true, fileMustExist: true })
        try {
          return (db.prepare(ORDER_BY_ID).all() as RawRow[]).map(fromRaw)
        } finally {
          db.close()
        }
      },
      async refuseUpdates () {
        // a temp trigger lives on the store's own connection: a real SQLite error, as from a full disk
        const db = storage!.db
        db.exec("CREATE TEMP TRIGGER refuse BEFORE UPDATE ON rpi_devices BEGIN SELECT RAISE(FAIL, 'no room'); END")
        return async () => { db.exec('DROP TRIGGER refuse') }
      }
    }
  }
}

const postgres: Engine = {
  name: 'postgres',
  async backend (t) {
    const database = await testDatabaseOrSkip(t)
    if (!database) return undefined
    const { url } = database
    const own = async <R>(fn: (client: pg.Client) => Promise<R>): Promise<R> => {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        return await fn(client)
      } finally {
        await client.end()
      }
    }
    let pool: Postgres | undefined
    return {
      async open () {
        pool = await Postgres.open(url, { max: 2, applicationName: 'doorsense-contract' })
        const opened = pool
        t.after(() => opened.close())
        // retries quicker than in service, so that a test waits less
        return PostgresDeviceRows.open(pool, { retryMs: 10, retryMaxMs: 50 })
      },
      async close () {
        await pool?.close()
      },
      async rows () {
        const { rows } = await own((client) => client.query<Record<keyof RawRow, string | number | null>>(ORDER_BY_ID))
        return rows.map((row) => fromRaw({
          ...row,
          first_seen: Number(row.first_seen),
          last_seen: Number(row.last_seen),
          keep_alives: Number(row.keep_alives)
        } as RawRow))
      },
      async refuseUpdates () {
        await own((client) => client.query(`CREATE FUNCTION refuse () RETURNS trigger LANGUAGE plpgsql
          AS $$ BEGIN RAISE EXCEPTION 'no room' USING ERRCODE = 'disk_full'; END $$;
          CREATE TRIGGER refuse BEFORE UPDATE ON rpi_devices FOR EACH ROW EXECUTE FUNCTION refuse()`))
        return async () => { await own((client) => client.query('DROP TRIGGER refuse ON rpi_devices; DROP FUNCTION refuse ()')) }
      }
    }
  }
}

interface RawRow {
  id: number
  name: string
  display_name: string | null
  addr: string
  first_seen: number
  last_seen: number
  keep_alives: number
}

function fromRaw (row: RawRow): DeviceRow {
  return {
    id: row.id,
    name: row.name,
    displayName: row.display_name,
    addr: row.addr,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    keepAlives: row.keep_alives
  }
}

const byId = (rows: DeviceRow[]): DeviceRow[] => [...rows].sort((a, b) => a.id - b.id)

/** A clock the test moves by hand, in the 2030s: epoch milliseconds far past 32 bits. */
function manualClock (start = Date.UTC(2031, 4, 6, 7, 8, 9, 123)) {
  const clock = { now: start, read: () => clock.now }
  return clock
}

async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

function registryOver (rows: DeviceRowStore, options: Partial<DeviceRegistryOptions> = {}): DeviceRegistry {
  return new DeviceRegistry(rows, { staleAfterMs: 30_000, flushMs: 60_000, ...options })
}

const T = Date.UTC(2031, 0, 2, 3, 4, 5, 678)

for (const engine of [sqlite, postgres]) {
  test(`${engine.name}: rows written read back with every column after a restart`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const rows = await backend.open()
    assert.deepEqual(rows.load(), [], 'a fresh database has no Pi')
    rows.upsert({ id: 0, name: 'hall', addr: '10.0.0.3', firstSeen: T, lastSeen: T + 5000, keepAlives: 7 })
    rows.upsert({ id: 32767, name: 'pörch ✓ "quoted"', addr: 'fe80::1%eth0', firstSeen: T + 1, lastSeen: T + 1, keepAlives: 0 })
    rows.setDisplayName(32767, 'Front door \'main\'')
    await rows.settled()
    await backend.close()
    const expected: DeviceRow[] = [
      { id: 0, name: 'hall', displayName: null, addr: '10.0.0.3', firstSeen: T, lastSeen: T + 5000, keepAlives: 7 },
      { id: 32767, name: 'pörch ✓ "quoted"', displayName: 'Front door \'main\'', addr: 'fe80::1%eth0', firstSeen: T + 1, lastSeen: T + 1, keepAlives: 0 }
    ]
    assert.deepEqual(byId((await backend.open()).load()), expected)
    assert.deepEqual(await backend.rows(), expected)
  })

  test(`${engine.name}: last_seen never goes back; name, address and count take the latest; first_seen stays`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const rows = await backend.open()
    rows.upsert({ id: 5, name: 'attic', addr: '10.0.0.5', firstSeen: T, lastSeen: T + 2000, keepAlives: 1 })
    rows.upsert({ id: 5, name: 'loft', addr: '10.0.0.55', firstSeen: T + 999, lastSeen: T + 1000, keepAlives: 2 })
    await rows.settled()
    assert.deepEqual(await backend.rows(), [{ id: 5, name: 'loft', displayName: null, addr: '10.0.0.55', firstSeen: T, lastSeen: T + 2000, keepAlives: 2 }])
    rows.writeSeen([{ id: 5, lastSeen: T + 500, keepAlives: 3 }])
    await rows.settled()
    assert.deepEqual((await backend.rows()).map((row) => [row.lastSeen, row.keepAlives]), [[T + 2000, 3]], 'an older time is not written back')
    rows.writeSeen([{ id: 5, lastSeen: T + 3000, keepAlives: 4 }, { id: 6, lastSeen: T, keepAlives: 1 }])
    rows.writeSeen([])
    await rows.settled()
    assert.deepEqual((await backend.rows()).map((row) => [row.id, row.lastSeen, row.keepAlives]), [[5, T + 3000, 4]], 'a Pi without a row gets none')
  })

  test(`${engine.name}: a registry writes keep-alive counts as it holds them; frames count none`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const clock = manualClock()
    const registry = registryOver(await backend.open(), { now: clock.read })
    for (let i = 0; i < 3; i++) {
      registry.keepAlive({ id: 1, name: 'kitchen', addr: '10.0.0.1' })
      clock.now += 1000
    }
    registry.touch(2, '10.0.0.2')
    clock.now += 1000
    registry.touch(2, '10.0.0.2')
    registry.flush()
    await registry.settled()
    assert.deepEqual((await backend.rows()).map((row) => [row.id, row.name, row.keepAlives, row.lastSeen]), [
      [1, 'kitchen', 3, clock.now - 2000],
      [2, '', 0, clock.now]
    ])
  })

  test(`${engine.name}: a door's own name is written, kept by keep-alives, and reset to null`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const rows = await backend.open()
    rows.upsert({ id: 3, name: 'pi-3', addr: '10.0.0.3', firstSeen: T, lastSeen: T, keepAlives: 1 })
    rows.setDisplayName(3, 'Garage')
    rows.upsert({ id: 3, name: 'pi-3b', addr: '10.0.0.3', firstSeen: T, lastSeen: T + 1, keepAlives: 2 })
    rows.setDisplayName(99, 'nobody') // no such Pi: nothing happens
    await rows.settled()
    assert.deepEqual((await backend.rows()).map((row) => [row.id, row.name, row.displayName]), [[3, 'pi-3b', 'Garage']])
    rows.setDisplayName(3, null)
    await rows.settled()
    await backend.close()
    assert.deepEqual((await backend.open()).load().map((row) => [row.name, row.displayName]), [['pi-3b', null]])
  })

  test(`${engine.name}: a deleted row is gone after a restart, and comes back as new`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const rows = await backend.open()
    rows.upsert({ id: 1, name: 'a', addr: '10.0.0.1', firstSeen: T, lastSeen: T + 10, keepAlives: 9 })
    rows.upsert({ id: 2, name: 'b', addr: '10.0.0.2', firstSeen: T, lastSeen: T, keepAlives: 1 })
    rows.setDisplayName(1, 'Old door')
    rows.delete(1)
    rows.delete(77) // none: nothing happens
    await rows.settled()
    await backend.close()
    const again = await backend.open()
    assert.deepEqual(again.load().map((row) => row.id), [2])
    again.upsert({ id: 1, name: 'a', addr: '10.0.0.1', firstSeen: T + 50, lastSeen: T + 50, keepAlives: 1 })
    await again.settled()
    assert.deepEqual((await backend.rows())[0], { id: 1, name: 'a', displayName: null, addr: '10.0.0.1', firstSeen: T + 50, lastSeen: T + 50, keepAlives: 1 })
  })

  test(`${engine.name}: an ID outside 0..32767 is refused in the call, and nothing is written`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const rows = await backend.open()
    for (const id of [40_000, -1]) {
      assert.throws(() => rows.upsert({ id, name: 'x', addr: '10.0.0.1', firstSeen: T, lastSeen: T, keepAlives: 1 }), /CHECK constraint failed/)
    }
    const registry = registryOver(rows)
    assert.throws(() => registry.keepAlive({ id: 40_000, name: 'x', addr: '10.0.0.1' }), /CHECK constraint failed/)
    assert.deepEqual(registry.known(), [], 'memory as it was')
    await rows.settled()
    assert.deepEqual(await backend.rows(), [])
  })

  test(`${engine.name}: a registry over a new store after a restart knows what the last one knew, none of it live`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const clock = manualClock()
    const first = registryOver(await backend.open(), { now: clock.read })
    first.keepAlive({ id: 4, name: 'old-name', addr: '10.0.0.4' })
    clock.now += 5000
    first.keepAlive({ id: 4, name: 'porch', addr: '10.0.0.44' })
    first.touch(9, '10.0.0.9')
    first.keepAlive({ id: 7, name: 'shed', addr: '10.0.0.7' })
    first.forget(7)
    clock.now += 1000
    first.keepAlive({ id: 4, name: 'porch', addr: '10.0.0.44' }) // only in memory until a flush
    first.touch(9, '10.0.0.9')
    first.rename(9, 'Back door')
    const known = first.known()
    first.close()
    await first.settled()
    await backend.close()

    const second = registryOver(await backend.open(), { now: clock.read })
    assert.deepEqual(second.live(), [])
    assert.deepEqual(second.known(), known.map((device) => ({ ...device, live: false })))
    assert.deepEqual([second.nameOf(4), second.nameOf(9), second.isKnown(7)], ['porch', 'Back door', false])
    assert.deepEqual(known.map((device) => [device.id, device.keepAlives, Date.parse(device.lastSeen)]), [[4, 3, clock.now], [9, 0, clock.now]])
  })

  test(`${engine.name}: close() writes what only memory held, before the database closes`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const clock = manualClock()
    const registry = registryOver(await backend.open(), { now: clock.read })
    for (const id of [1, 2, 3]) registry.keepAlive({ id, name: `pi-${id}`, addr: `10.0.0.${id}` })
    await registry.settled()
    clock.now += 1000
    for (const id of [1, 2, 3]) registry.keepAlive({ id, name: `pi-${id}`, addr: `10.0.0.${id}` })
    clock.now += 1000
    registry.touch(3, '10.0.0.3')
    assert.equal(registry.unflushed, 3)
    assert.deepEqual((await backend.rows()).map((row) => row.keepAlives), [1, 1, 1], 'not written yet: the flush is a minute away')
    registry.close()
    await registry.settled()
    assert.equal(registry.unflushed, 0)
    await backend.close()
    assert.deepEqual((await backend.rows()).map((row) => [row.id, row.keepAlives, row.lastSeen]), [
      [1, 2, clock.now - 1000],
      [2, 2, clock.now - 1000],
      [3, 2, clock.now]
    ])
  })

  test(`${engine.name}: a flush the database refuses is reported and written once it takes writes again`, async (t) => {
    const backend = await engine.backend(t)
    if (!backend) return
    const errors: unknown[] = []
    const registry = registryOver(await backend.open(), { flushMs: 40, onFlushError: (err) => errors.push(err) })
    registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
    await registry.settled()
    const release = await backend.refuseUpdates()
    registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
    await waitFor(() => errors.length >= 2)
    assert.match(String(errors[0]), /no room/)
    assert.equal((await backend.rows())[0].keepAlives, 1)
    await release()
    await waitFor(async () => (await backend.rows())[0].keepAlives === 2)
    await registry.settled()
    assert.equal(registry.unflushed, 0)
  })
}

test('postgres: settled() waits out a refusing database, and what queued behind the refused write is written after it, in order', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const clock = manualClock()
  const errors: unknown[] = []
  const registry = registryOver(await backend.open(), { now: clock.read, onFlushError: (err) => errors.push(err) })
  registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
  registry.keepAlive({ id: 8, name: 'shed', addr: '10.0.0.8' })
  await registry.settled()
  const release = await backend.refuseUpdates()
  for (let i = 0; i < 5; i++) {
    clock.now += 1000
    registry.keepAlive({ id: 9, name: 'porch', addr: '10.0.0.9' })
    registry.flush() // five flushes while the first is refused: the later ones join one batch behind it
  }
  registry.forget(8)
  registry.keepAlive({ id: 8, name: 'shed', addr: '10.0.0.8' }) // back as new, after its delete
  registry.close()
  let settled = false
  const done = registry.settled().then(() => { settled = true })
  await sleep(200)
  assert.equal(settled, false, 'still waiting while the database refuses')
  assert.ok(errors.length >= 2, 'each failed try reported')
  assert.deepEqual((await backend.rows()).map((row) => [row.id, row.keepAlives]), [[8, 1], [9, 1]], 'nothing overtook the refused write')
  await release()
  await done
  assert.deepEqual((await backend.rows()).map((row) => [row.id, row.keepAlives, row.firstSeen, row.lastSeen]), [
    [8, 1, clock.now, clock.now],
    [9, 6, manualClock().now, clock.now]
  ])
})

test('postgres: if the pool closes with writes queued, settled() rejects saying how many were lost, and later writes throw', async (t) => {
  const backend = await postgres.backend(t)
  if (!backend) return
  const errors: unknown[] = []
  const rows = await backend.open()
  const registry = registryOver(rows, { onFlushError: (err) => errors.push(err) })
  registry.keepAlive({ id: 1, name: 'hall', addr: '10.0.0.1' })
  await registry.settled()
  await backend.refuseUpdates()
  registry.keepAlive({ id: 1, name: 'hall', addr: '10.0.0.1' })
  registry.flush()
  const settled = registry.settled()
  await waitFor(() => errors.length >= 1)
  await backend.close()
  await assert.rejects(settled, /1 write\(s\) to rpi_devices were lost: the PostgreSQL pool \(at 127\.0\.0\.1:\d+, database doorsense_\w+\) closed/)
  assert.equal(rows.open, false)
  assert.throws(() => registry.keepAlive({ id: 2, name: 'new', addr: '10.0.0.2' }), /PostgreSQL pool .* is closed/)
  assert.deepEqual(registry.known().map((device) => device.id), [1], 'memory as it was')
  assert.equal((await backend.rows())[0].keepAlives, 1)
})
