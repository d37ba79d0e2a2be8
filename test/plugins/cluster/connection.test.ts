import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { Objm } from '@nats-io/obj'
import { connectCluster, destroyCluster, redactNatsUrl } from '../../../plugins/cluster/connection.js'
import { FrameStream } from '../../../plugins/cluster/frame-stream.js'
import { engineUnavailable } from '../../fixtures/engines.js'
import { testCluster } from './cluster.js'

const reason = await engineUnavailable('nats')

test('connectCluster: an unreachable server is an Error naming the URL, without its password', async () => {
  // port 1 on loopback: nothing listens there
  await assert.rejects(connectCluster({ url: 'nats://user:secret@127.0.0.1:1', clusterName: 'c', instanceId: 'i', connectTimeoutMs: 1000 }), (error: Error) => {
    assert.match(error.message, /cannot connect to NATS at nats:\/\/user:\*\*\*@127\.0\.0\.1:1/)
    assert.doesNotMatch(error.message, /secret/)
    return true
  })
  assert.equal(redactNatsUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222')
  await assert.rejects(connectCluster({ url: 'nats://127.0.0.1:1', clusterName: 'not.valid', instanceId: 'i' }), /cluster name "not.valid" must match/)
})

test('connectCluster: a server without JetStream is an Error saying so', { skip: reason }, async (t) => {
  // a second server of the same binary, loopback, on a port it picks, JetStream off
  const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.after(() => server.kill())
  let log = ''
  const port = await new Promise<string>((resolve, reject) => {
    server.once('error', reject)
    server.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      const match = /client connections on 127\.0\.0\.1:(\d+)/.exec(log)
      if (match !== null) resolve(match[1])
    })
  })
  await assert.rejects(connectCluster({ url: `nats://127.0.0.1:${port}`, clusterName: 'c', instanceId: 'i' }),
    new RegExp(`NATS at nats://127\\.0\\.0\\.1:${port} has no JetStream`))
  server.kill()
  await once(server, 'exit')
})

test('destroyCluster removes the stream and the buckets, the models\' Object Store included, and does not mind them missing', { skip: reason }, async (t) => {
  const { conn } = await testCluster(t)
  await FrameStream.open(conn, { partitions: 2, maxAgeMs: 60_000, maxBytes: -1, duplicateWindowMs: 1000 })
  const { names } = conn
  for (const bucket of [names.doorsBucket, names.ownersBucket, names.instancesBucket, names.activeBucket, names.locksBucket]) {
    await conn.kvm.create(bucket, { history: 1 })
  }
  await new Objm(conn.js).create(names.modelsBucket)
  const streams = async (): Promise<string[]> => {
    const names: string[] = []
    for await (const name of conn.jsm.streams.names()) if (name.includes(conn.names.cluster)) names.push(name)
    return names.sort()
  }
  assert.equal((await streams()).length, 7)
  await destroyCluster(conn)
  assert.deepEqual(await streams(), [])
  await destroyCluster(conn)
})
