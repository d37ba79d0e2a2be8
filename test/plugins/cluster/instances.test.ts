import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InstanceDirectory } from '../../../plugins/cluster/instances.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster, until } from './cluster.js'

const reason = await engineUnavailable('nats')

const TTL_MS = 900
const HEARTBEAT_MS = 150

const ids = (directory: InstanceDirectory): string[] => directory.list().map((info) => info.id)

test('two instances see each other, with their url and partitions; a stopped one disappears at once', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await InstanceDirectory.open(cluster.conn, { self: { id: 'a', url: 'http://127.0.0.1:3001', startedAt: 1 }, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS })
  cluster.cleanup(() => a.stop())
  assert.deepEqual(ids(a), ['a'], 'open() wrote and read the bucket')
  let changes = 0
  a.on('changed', () => changes++)
  a.start()
  const b = await InstanceDirectory.open(await cluster.connect('b'), {
    self: { id: 'b', url: 'http://127.0.0.1:3002', startedAt: 2 }, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS
  })
  cluster.cleanup(() => b.stop())
  b.start()
  assert.deepEqual(ids(b), ['a', 'b'])
  await until(() => ids(a).length === 2, 2000, 'a sees b')
  assert.ok(changes >= 1)
  const seen = a.list().find((info) => info.id === 'b')
  assert.equal(seen?.url, 'http://127.0.0.1:3002')
  assert.equal(seen?.startedAt, 2)
  assert.deepEqual(seen?.owned, [])
  assert.ok(Math.abs(Date.now() - (seen?.heartbeatAt ?? 0)) < 2000)

  b.setOwned([5, 1, 3])
  await until(() => a.list().find((info) => info.id === 'b')?.owned.join() === '1,3,5', 2000, 'a sees what b owns')

  const before = changes
  await b.stop()
  const gone = await until(() => ids(a).join() === 'a', 2000, 'b gone from a\'s list')
  assert.ok(gone <= HEARTBEAT_MS * 2 + 200, `stop() deletes the entry: gone in ${gone} ms, not after the ttl`)
  assert.ok(changes > before)
})

test('an instance that dies (its connection cut) drops out within the ttl', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const a = await InstanceDirectory.open(cluster.conn, { self: { id: 'a', url: 'http://a', startedAt: 1 }, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS })
  cluster.cleanup(() => a.stop())
  a.start()
  const doomed = await cluster.connect('d')
  const errors: unknown[] = []
  const d = await InstanceDirectory.open(doomed, {
    self: { id: 'd', url: 'http://d', startedAt: 1 }, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS, onError: (error) => errors.push(error)
  })
  cluster.cleanup(() => d.stop())
  d.start()
  await until(() => ids(a).length === 2, 2000, 'a sees d')
  await doomed.nc.close()
  const gone = await until(() => ids(a).join() === 'a', 5000, 'd gone from a\'s list')
  // the entry was last written at most a heartbeat before the cut, and a reads the bucket every heartbeat
  assert.ok(gone <= TTL_MS + HEARTBEAT_MS + 300, `gone in ${gone} ms`)
  assert.ok(gone >= TTL_MS - HEARTBEAT_MS - 100, `gone in ${gone} ms: not before the ttl`)
  await until(() => errors.length > 0, 2000, 'd\'s heartbeats fail')
})

test('an id that cannot be a key, or a heartbeat not shorter than the ttl, is refused', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  await assert.rejects(InstanceDirectory.open(cluster.conn, { self: { id: 'a.b', url: '', startedAt: 0 }, ttlMs: 900 }), /instance id "a.b" must match/)
  await assert.rejects(InstanceDirectory.open(cluster.conn, { self: { id: 'a', url: '', startedAt: 0 }, ttlMs: 900, heartbeatMs: 900 }), RangeError)
})
