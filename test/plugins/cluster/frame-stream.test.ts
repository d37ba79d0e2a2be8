import assert from 'node:assert/strict'
import { test } from 'node:test'
import { millis } from '@nats-io/transport-node'
import { FrameStream, type FrameStreamOptions } from '../../../plugins/cluster/frame-stream.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster } from './cluster.js'

const reason = await engineUnavailable('nats')

const OPTIONS: FrameStreamOptions = { partitions: 4, maxAgeMs: 60_000, maxBytes: 1_000_000, duplicateWindowMs: 10_000 }
const frames = (device: number, value = 1): { device: number, receivedAt: number, features: Float32Array[] } =>
  ({ device, receivedAt: Date.now(), features: [Float32Array.of(value, value + 1), Float32Array.of(value + 2, value + 3)] })

test('publish with a msgId is stored once: the retry gets the same seq and duplicate true', { skip: reason }, async (t) => {
  const { conn } = await testCluster(t)
  const stream = await FrameStream.open(conn, OPTIONS)
  const first = await stream.publish(frames(6), 'pi-6-batch-1')
  const again = await stream.publish(frames(6), 'pi-6-batch-1')
  const other = await stream.publish(frames(6), 'pi-6-batch-2')
  const anonymous = await stream.publish(frames(6))
  const anonymousAgain = await stream.publish(frames(6))
  assert.deepEqual(again, { seq: first.seq, duplicate: true })
  assert.equal(first.duplicate, false)
  assert.equal(other.seq, first.seq + 1)
  assert.equal(anonymousAgain.seq, anonymous.seq + 1, 'without a msgId every publish is stored')
  const info = await stream.info()
  assert.equal(info.messages, 4)
  assert.equal(info.firstSeq, first.seq)
  assert.equal(info.lastSeq, anonymousAgain.seq)
  assert.ok(info.bytes > 4 * (20 + 16))
  // the subject carries the partition: device 6 of 4 partitions is partition 2
  const stored = await conn.jsm.streams.getMessage(conn.names.frameStream, { seq: first.seq })
  assert.equal(stored?.subject, `${conn.names.cluster}.frames.2.6`)
})

test('the stream gets the retention limits asked, and a reopen brings it to new ones', { skip: reason }, async (t) => {
  const { conn } = await testCluster(t)
  const stream = await FrameStream.open(conn, OPTIONS)
  assert.equal(stream.partitions, 4)
  const { config } = await conn.jsm.streams.info(conn.names.frameStream)
  assert.equal(millis(config.max_age), 60_000)
  assert.equal(config.max_bytes, 1_000_000)
  assert.equal(millis(config.duplicate_window), 10_000)
  assert.equal(config.storage, 'file')
  assert.equal(config.discard, 'old')
  assert.deepEqual(config.subjects, [`${conn.names.cluster}.frames.*.*`])

  // a duplicate window longer than the age is capped; -1 is unbounded
  await FrameStream.open(conn, { ...OPTIONS, maxAgeMs: 5000, maxBytes: -1, duplicateWindowMs: 120_000 })
  const updated = (await conn.jsm.streams.info(conn.names.frameStream)).config
  assert.equal(millis(updated.max_age), 5000)
  assert.equal(updated.max_bytes, -1)
  assert.equal(millis(updated.duplicate_window), 5000)
})

test('max_bytes discards the oldest batches; the stream keeps the newest', { skip: reason }, async (t) => {
  const { conn } = await testCluster(t)
  const stream = await FrameStream.open(conn, { ...OPTIONS, maxBytes: 2000 })
  for (let index = 0; index < 40; index++) await stream.publish(frames(index % 4, index))
  const info = await stream.info()
  assert.ok(info.bytes <= 2000, `${info.bytes} bytes held`)
  assert.ok(info.messages < 40 && info.messages > 0)
  assert.equal(info.lastSeq, 40)
  assert.equal(info.firstSeq, 40 - info.messages + 1)
})

test('an instance configured for another partition count is refused: the partition map would differ', { skip: reason }, async (t) => {
  const { conn, connect } = await testCluster(t)
  await FrameStream.open(conn, OPTIONS)
  const other = await connect('i1')
  await assert.rejects(FrameStream.open(other, { ...OPTIONS, partitions: 8 }), /made for 4 partitions, this instance is configured for 8/)
  assert.equal((await FrameStream.open(other, OPTIONS)).partitions, 4)
  await assert.rejects(FrameStream.open(other, { ...OPTIONS, partitions: 0 }), RangeError)
  await assert.rejects(FrameStream.open(other, { ...OPTIONS, maxBytes: 0 }), RangeError)
})
