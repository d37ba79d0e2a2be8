import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { FrameStream } from '../../../plugins/cluster/frame-stream.js'
import { frameSubject } from '../../../plugins/cluster/names.js'
import { PartitionConsumer, type ConsumedBatch } from '../../../plugins/cluster/partition-consumer.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster, until, type TestCluster } from './cluster.js'

const reason = await engineUnavailable('nats')

const batch = (device: number, value: number): { device: number, receivedAt: number, features: Float32Array[] } =>
  ({ device, receivedAt: 1000 + value, features: [Float32Array.of(value, -value)] })

async function openStream (cluster: TestCluster): Promise<FrameStream> {
  return await FrameStream.open(cluster.conn, { partitions: 4, maxAgeMs: 60_000, maxBytes: -1, duplicateWindowMs: 1000 })
}

async function consumerNames (cluster: TestCluster): Promise<string[]> {
  const names: string[] = []
  for await (const info of cluster.conn.jsm.consumers.list(cluster.conn.names.frameStream)) names.push(info.name)
  return names
}

test('a partition consumer replays the stored batches of its partition, then delivers new ones, in order; stop ends delivery', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const stream = await openStream(cluster)
  const startedAt = Date.now()
  // partition 1 of 4: devices 1, 5, 9; the others are not its own
  for (let value = 0; value < 6; value++) await stream.publish(batch([1, 2, 5, 3, 9, 4][value], value))
  const got: ConsumedBatch[] = []
  const errors: unknown[] = []
  const consumer = await PartitionConsumer.start(cluster.conn, stream, {
    partition: 1, replayFromMs: startedAt - 1000, onBatch: (consumed) => got.push(consumed), onError: (error) => errors.push(error)
  })
  cluster.cleanup(() => consumer.stop())
  await until(() => got.length === 3, 5000, 'the three stored batches of partition 1')
  for (let value = 6; value < 10; value++) await stream.publish(batch(value % 2 === 0 ? 13 : 14, value))
  await until(() => got.length === 5, 5000, 'the two new batches of partition 1')
  assert.deepEqual(got.map((consumed) => [consumed.device, consumed.features[0][0], consumed.replayed]), [
    [1, 0, true], [5, 2, true], [9, 4, true], [13, 6, false], [13, 8, false]
  ])
  assert.deepEqual(got.map((consumed) => consumed.seq), [1, 3, 5, 7, 9])
  assert.equal(got[3].receivedAt, 1006)
  assert.deepEqual([...got[4].features[0]], [8, -8])
  await until(() => consumer.pending() === 0, 2000, 'pending reaches 0')
  assert.equal(consumer.delivered(), 5)
  assert.deepEqual(errors, [])

  assert.equal((await consumerNames(cluster)).length, 1)
  await consumer.stop()
  await stream.publish(batch(17, 20))
  await sleep(300)
  assert.equal(got.length, 5, 'nothing after stop()')
  assert.deepEqual(await consumerNames(cluster), [], 'stop() deleted its consumer')
  await consumer.stop()
})

test('replayFromMs: only the batches stored from then on are replayed; a backlog shows in pending()', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const stream = await openStream(cluster)
  await stream.publish(batch(2, 0))
  await sleep(50)
  const from = Date.now()
  await sleep(5)
  for (let value = 1; value <= 300; value++) await stream.publish(batch(2, value))
  const got: ConsumedBatch[] = []
  // pending() as each batch arrives (once start() resolved): the backlog shrinking to 0
  const pendingSeen: number[] = []
  const started: { consumer?: PartitionConsumer } = {}
  const consumer = await PartitionConsumer.start(cluster.conn, stream, {
    partition: 2,
    replayFromMs: from,
    onBatch: (consumed) => {
      got.push(consumed)
      if (started.consumer !== undefined) pendingSeen.push(started.consumer.pending())
    }
  })
  started.consumer = consumer
  cluster.cleanup(() => consumer.stop())
  await until(() => got.length === 300, 5000, '300 batches')
  assert.equal(got[0].features[0][0], 1, 'the batch before replayFromMs is not replayed')
  assert.ok(got.every((consumed, index) => consumed.features[0][0] === index + 1 && consumed.replayed))
  await until(() => consumer.pending() === 0, 2000, 'caught up')
  assert.ok(pendingSeen[0] >= 100, `pending() showed the backlog: ${pendingSeen[0]}`)
  assert.ok(pendingSeen.every((pending, index) => index === 0 || pending === pendingSeen[index - 1] - 1), 'one less with every batch')
  assert.equal(pendingSeen.at(-1), 0)
})

test('a message that does not decode goes to onError and is skipped', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const stream = await openStream(cluster)
  const got: ConsumedBatch[] = []
  const errors: Error[] = []
  const consumer = await PartitionConsumer.start(cluster.conn, stream, {
    partition: 3, replayFromMs: Date.now(), onBatch: (consumed) => got.push(consumed), onError: (error) => errors.push(error as Error)
  })
  cluster.cleanup(() => consumer.stop())
  await stream.publish(batch(3, 1))
  await cluster.conn.js.publish(frameSubject(cluster.conn.names, 3, 7), new TextEncoder().encode('{"ID":7,"frames":[[1,2,3]]}'))
  await stream.publish(batch(7, 2))
  await until(() => got.length === 2, 5000, 'both good batches')
  assert.deepEqual(got.map((consumed) => consumed.seq), [1, 3])
  assert.equal(errors.length, 1)
  assert.match(errors[0].message, /partition consumer 3: message 2 on c\w+\.frames\.3\.7 skipped: frame batch: version 123/)
  assert.equal(consumer.delivered(), 2)
})

test('a consumer deleted under it is made again after the last batch delivered: nothing lost, nothing twice', { skip: reason }, async (t) => {
  const cluster = await testCluster(t)
  const stream = await openStream(cluster)
  const got: number[] = []
  const errors: Error[] = []
  const consumer = await PartitionConsumer.start(cluster.conn, stream, {
    partition: 0, replayFromMs: Date.now(), onBatch: (consumed) => got.push(consumed.features[0][0]), onError: (error) => errors.push(error as Error)
  })
  cluster.cleanup(() => consumer.stop())
  for (let value = 0; value < 3; value++) await stream.publish(batch(4, value))
  await until(() => got.length === 3, 5000, 'the first three')
  const [name] = await consumerNames(cluster)
  await cluster.conn.jsm.consumers.delete(cluster.conn.names.frameStream, name)
  for (let value = 3; value < 6; value++) await stream.publish(batch(8, value))
  await until(() => got.length === 6, 5000, 'the three published while it had no consumer')
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5])
  assert.ok(errors.some((error) => /consumer deleted; making it again/.test(error.message)), errors.map((error) => error.message).join('; '))
  const names = await consumerNames(cluster)
  assert.equal(names.length, 1)
  assert.notEqual(names[0], name)
  await consumer.stop()
  assert.deepEqual(await consumerNames(cluster), [])
})
