import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Counter, Registry } from 'prom-client'
import { Storage } from '../../../core/storage.js'
import { parseFrame } from '../../../domain/frames.js'
import { FrameStore } from '../../../plugins/rpi-servers/frame-store.js'
import { decodeBatch, FrameIngest } from '../../../plugins/rpi-servers/ingest.js'
import { RPI_SERVERS_SCHEMA } from '../../../plugins/rpi-servers/rpi-servers-schema.js'
import { DeviceRegistry } from '../../../plugins/rpi-servers/registry.js'
import { sweepIntervalMs } from '../../../plugins/rpi-servers/index.js'
import { tempDir } from '../../helper.js'

/** A migrated database in a temp dir, closed after the test. */
function openStorage (t: TestContext, dir = tempDir(t)): Storage {
  const storage = new Storage(dir)
  storage.migrate(RPI_SERVERS_SCHEMA)
  t.after(() => storage.close())
  return storage
}

/** A clock the test moves by hand. */
function manualClock (start = Date.UTC(2024, 0, 1)) {
  const clock = { now: start, read: () => clock.now }
  return clock
}

test('a keep-alive makes a Pi live and remembered; the list is sorted by ID', (t) => {
  const clock = manualClock()
  const registry = new DeviceRegistry(openStorage(t).db, { staleAfterMs: 30_000, now: clock.read })
  assert.deepEqual(registry.live(), [])
  const first = registry.keepAlive({ id: 9, name: 'hall', addr: '10.0.0.9' })
  assert.equal(first.cameLive, true)
  assert.deepEqual(first.device, { id: 9, name: 'hall', addr: '10.0.0.9', lastSeen: new Date(clock.now).toISOString() })
  clock.now += 1000
  registry.keepAlive({ id: 2, name: 'kitchen', addr: '10.0.0.2' })
  assert.equal(registry.keepAlive({ id: 9, name: 'hall', addr: '10.0.0.9' }).cameLive, false)
  assert.deepEqual(registry.live().map((d) => d.id), [2, 9])
  assert.equal(registry.liveCount(), 2)
  assert.deepEqual(registry.known().map((d) => [d.id, d.keepAlives, d.live]), [[2, 1, true], [9, 2, true]])
})

test('a Pi silent for staleAfterMs leaves the live list, and the sweep drops it; a new keep-alive brings it back', (t) => {
  const clock = manualClock()
  const registry = new DeviceRegistry(openStorage(t).db, { staleAfterMs: 30_000, now: clock.read })
  registry.keepAlive({ id: 1, name: 'a', addr: '10.0.0.1' })
  clock.now += 10_000
  registry.keepAlive({ id: 2, name: 'b', addr: '10.0.0.2' })
  clock.now += 19_999 // 1 silent 29.999 s, 2 silent 19.999 s
  assert.deepEqual(registry.live().map((d) => d.id), [1, 2])
  assert.deepEqual(registry.sweep(), [])
  clock.now += 1 // 1 silent exactly 30 s
  assert.deepEqual(registry.live().map((d) => d.id), [2], 'stale before the sweep runs')
  assert.equal(registry.liveCount(), 1)
  assert.deepEqual(registry.sweep(), [1])
  assert.deepEqual(registry.sweep(), [], 'dropped once')
  assert.deepEqual(registry.known().map((d) => [d.id, d.live]), [[1, false], [2, true]])
  assert.equal(registry.keepAlive({ id: 1, name: 'a', addr: '10.0.0.1' }).cameLive, true)
  assert.deepEqual(registry.live().map((d) => d.id), [1, 2])
})

test('known Pis survive a reopened database; none is live until it sends a keep-alive', (t) => {
  const dir = tempDir(t)
  const clock = manualClock()
  const firstStorage = new Storage(dir)
  firstStorage.migrate(RPI_SERVERS_SCHEMA)
  const first = new DeviceRegistry(firstStorage.db, { staleAfterMs: 30_000, now: clock.read })
  const firstSeen = clock.now
  first.keepAlive({ id: 4, name: 'old-name', addr: '10.0.0.4' })
  clock.now += 5000
  first.keepAlive({ id: 4, name: 'porch', addr: '10.0.0.44' })
  firstStorage.close()

  const second = new DeviceRegistry(openStorage(t, dir).db, { staleAfterMs: 30_000, now: clock.read })
  assert.deepEqual(second.live(), [])
  assert.deepEqual(second.known(), [{
    id: 4,
    name: 'porch',
    addr: '10.0.0.44',
    firstSeen: new Date(firstSeen).toISOString(),
    lastSeen: new Date(clock.now).toISOString(),
    keepAlives: 2,
    live: false
  }])
})

test('the database refuses an ID outside 0..32767 even if a caller skipped the schema', (t) => {
  const registry = new DeviceRegistry(openStorage(t).db, { staleAfterMs: 30_000 })
  assert.throws(() => registry.keepAlive({ id: 40_000, name: 'x', addr: '10.0.0.1' }), /CHECK constraint failed/)
  assert.deepEqual(registry.live(), [], 'not live either')
})

test('the frame store keeps features bit-exact and stores nothing when the transaction fails', (t) => {
  const store = new FrameStore(openStorage(t).db)
  const features = Float32Array.from({ length: 106 }, (_, i) => Math.fround(Math.sin(i) * 40))
  store.insert(3, [{ features, encoding: 'features' }, { features: features.map((v) => -v), encoding: 'raw-pi' }], 1234, () => 0)
  const [a, b] = store.list(3)
  assert.deepEqual(a.features, features)
  assert.deepEqual(b.features, features.map((v) => -v))
  assert.deepEqual([a.device, a.receivedAt, a.encoding, b.encoding], [3, 1234, 'features', 'raw-pi'])
  assert.throws(() => store.insert(3, [{ features, encoding: 'features' }], 1, () => { throw new Error('capture failed') }), /capture failed/)
  assert.equal(store.count(3), 2, 'the failed batch left nothing')
  assert.equal(store.count(), 2)
  assert.equal(store.count(4), 0)
})

test('ingest stores good frames, reports bad ones by index, hands the good ones to capture, and counts both', async (t) => {
  const store = new FrameStore(openStorage(t).db)
  const registry = new Registry()
  const received = new Counter({ name: 'received', help: 'r', labelNames: ['device'] as const, registers: [registry] })
  const rejected = new Counter({ name: 'rejected', help: 'r', labelNames: ['device'] as const, registers: [registry] })
  const recorded: Array<{ device: number, frames: number, source: string }> = []
  // a capture session that labels every other frame it is given
  const captures = {
    dedupesBatches: false,
    recordWithin: (_tx: unknown, device: number, frames: readonly Float32Array[], source: string) => {
      recorded.push({ device, frames: frames.length, source })
      return Math.ceil(frames.length / 2)
    }
  }
  const fed: Array<{ device: number, frames: number }> = []
  const seen: string[] = []
  const ingest = new FrameIngest({
    store,
    captures,
    received,
    rejected,
    doorState: (device, frames) => { fed.push({ device, frames: frames.length }) },
    seen: (device, addr) => { seen.push(`${device}@${addr}`) },
    now: () => 99
  })
  const good = Array.from({ length: 106 }, (_, i) => (i < 53 ? i : (i - 79) / 10)) // magnitudes 0..52, phases -2.6..2.6
  const receipt = await ingest.ingest(12, [good, 'nope', good, [1, 2, 3]], '10.0.0.9')
  assert.deepEqual(fed, [{ device: 12, frames: 2 }], 'the good frames go to the door state')
  assert.deepEqual(seen, ['12@10.0.0.9'], 'frames imply a keep-alive')
  assert.deepEqual(receipt.accepted, 2)
  assert.deepEqual(receipt.rejected.map((r) => r.index), [1, 3])
  assert.match(receipt.rejected[1].reason, /got 3$/)
  assert.equal(receipt.labelled, 1)
  assert.deepEqual(recorded, [{ device: 12, frames: 2, source: 'frames' }])
  assert.deepEqual(store.list(12).map((f) => f.features), [parseFrame(good), parseFrame(good)])
  assert.equal((await received.get()).values[0].value, 2)
  assert.equal((await rejected.get()).values[0].value, 2)

  assert.throws(() => ingest.ingest(12, [null, 'x'], '10.0.0.9'), (err: Error & { code?: string, statusCode?: number }) => {
    assert.equal(err.code, 'DS_BAD_FRAME')
    assert.equal(err.statusCode, 400)
    assert.match(err.message, /^all 2 frames were rejected, nothing stored: frames\[0\]: frame is missing; frames\[1\]: frame value 0/)
    return true
  })
  assert.equal(store.count(12), 2)
  assert.equal(recorded.length, 1, 'capture not called for an all-bad batch')
})

test('decodeBatch tells the encoding of each frame', () => {
  const batch = decodeBatch([Array(106).fill(1), Array(108).fill(1), Array(128).fill(1), Array(7).fill(1)])
  assert.deepEqual(batch.decoded.map((f) => f.encoding), ['features', 'raw-pi', 'raw-esp32'])
  assert.deepEqual(batch.rejected.map((r) => r.index), [3])
})

test('the sweep period follows STALE_AFTER_S within 50 ms..5 s', () => {
  assert.equal(sweepIntervalMs(30_000), 5000)
  assert.equal(sweepIntervalMs(2000), 1000)
  assert.equal(sweepIntervalMs(20), 50)
})
