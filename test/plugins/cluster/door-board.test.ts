import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DoorBoard } from '../../../plugins/cluster/door-board.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster, until } from './cluster.js'

const reason = await engineUnavailable('nats')

type Event = ['put', number, unknown] | ['deleted', number]

function record (board: DoorBoard): Event[] {
  const events: Event[] = []
  board.on('put', (device, value) => events.push(['put', device, value]))
  board.on('deleted', (device) => events.push(['deleted', device]))
  return events
}

test('door states put on one instance are watched and read on another: current values first, then each change', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const writer = await DoorBoard.open(cluster.conn)
  await writer.put(3, { state: 'open', angle: 42.5 })
  await writer.put(12, { state: 'closed', angle: 0 })
  await writer.put(7, 'gone soon')
  await writer.delete(7)
  await writer.put(3, { state: 'closed', angle: 1 })

  const reader = await DoorBoard.open(await cluster.connect('i1'))
  cluster.cleanup(() => reader.stop())
  const events = record(reader)
  await reader.watch()
  // a door deleted before the watch is simply absent; door 3 has its latest value only
  assert.deepEqual(events, [['put', 12, { state: 'closed', angle: 0 }], ['put', 3, { state: 'closed', angle: 1 }]])
  assert.equal(reader.watch(), reader.watch(), 'one watch')

  await writer.put(40, { state: 'unknown' })
  await writer.delete(12)
  await writer.put(3, null)
  await until(() => events.length === 5, 5000, 'three changes')
  assert.deepEqual(events.slice(2), [['put', 40, { state: 'unknown' }], ['deleted', 12], ['put', 3, null]])
  assert.deepEqual(await reader.all(), new Map<number, unknown>([[3, null], [40, { state: 'unknown' }]]))

  await reader.stop()
  await writer.put(41, 1)
  await sleep(200)
  assert.equal(events.length, 5, 'nothing after stop()')
})

test('door states survive the instances: a new connection reads them; the bucket has no ttl and one value a key', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const first = await cluster.connect('i1')
  const board = await DoorBoard.open(first)
  await board.put(0, { state: 'open' })
  await board.put(32767, [1, 2, 3])
  await first.close()

  const again = await DoorBoard.open(await cluster.connect('i2'))
  assert.deepEqual(await again.all(), new Map<number, unknown>([[0, { state: 'open' }], [32767, [1, 2, 3]]]))
  const { config } = await cluster.conn.jsm.streams.info(`KV_${cluster.conn.names.doorsBucket}`)
  assert.equal(config.max_age, 0)
  assert.equal(config.max_msgs_per_subject, 1)
})

test('an empty board\'s watch resolves at once; devices out of range and non-JSON values are refused', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const board = await DoorBoard.open(cluster.conn)
  cluster.cleanup(() => board.stop())
  const events = record(board)
  await board.watch()
  assert.deepEqual(events, [])
  assert.deepEqual(await board.all(), new Map())
  await assert.rejects(board.put(32768, {}), RangeError)
  await assert.rejects(board.put(-1, {}), RangeError)
  await assert.rejects(board.delete(1.5), RangeError)
  await assert.rejects(board.put(1, undefined), TypeError)
  await board.put(1, true)
  await until(() => events.length === 1, 5000, 'the put')
  assert.deepEqual(events, [['put', 1, true]])
})

test('a value that is not JSON (written by something else) goes to onError and is skipped', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const errors: Error[] = []
  const board = await DoorBoard.open(cluster.conn, { onError: (error) => errors.push(error as Error) })
  cluster.cleanup(() => board.stop())
  const kv = await cluster.conn.kvm.open(cluster.conn.names.doorsBucket)
  await kv.put('d5', 'not json')
  await kv.put('other', '1')
  await board.put(6, 'fine')
  const events = record(board)
  await board.watch()
  assert.deepEqual(events, [['put', 6, 'fine']])
  assert.match(errors[0]?.message ?? '', /door 5's value is not JSON/)
  assert.deepEqual(await board.all(), new Map([[6, 'fine']]))
})
