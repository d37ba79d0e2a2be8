import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'
import { encodeBinaryFrames } from '../../../domain/frames.js'
import type { ClusterStatus } from '../../../schemas/cluster.js'
import type { Door } from '../../../schemas/doors.js'
import { engineUnavailable, TEST_NATS_URL } from '../../fixtures/engines.js'
import { testDatabase } from '../../fixtures/postgres.js'
import { sessionSlice } from '../../fixtures/training.js'
import { ADMIN, buildTestApp, RPI_RAW_FRAMES } from '../../helper.js'
import { testCluster } from './cluster.js'

// two instances in one process: the cluster's HTTP side (frames to the stream once, the Pis shared, GET /cluster)
const skip = await engineUnavailable('nats') ?? await engineUnavailable('postgres')
const PARTITIONS = 4

async function waitFor<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = await check()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(50)
  }
}

async function status (app: App): Promise<ClusterStatus> {
  return (await app.inject('/cluster')).json<ClusterStatus>()
}

function framesBody (device: number, rows = sessionSlice(3)): { ID: number, frames: number[][] } {
  return { ID: device, frames: rows.map((row) => Array.from(row.features)) }
}

async function twoInstances (t: import('node:test').TestContext): Promise<[App, App]> {
  const cluster = await testCluster(t)
  const database = await testDatabase(t)
  assert.ok('url' in database)
  const env = {
    NATS_URL: TEST_NATS_URL, CLUSTER_NAME: cluster.clusterName, CLUSTER_PARTITIONS: String(PARTITIONS), OWNER_TAKEOVER_S: '2', DATABASE_URL: database.url
  }
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  // the apps close before the cluster's stream and buckets go
  cluster.cleanup(async () => { await Promise.all([a.close(), b.close()]) })
  return [a, b]
}

test('GET /cluster: two instances split every partition between them; the embedded default owns its one', { skip }, async (t) => {
  const [a, b] = await twoInstances(t)
  const settled = await waitFor('every partition owned, two each', async () => {
    const seen = await status(b)
    const counts = seen.instances.map((instance) => instance.owned.length).sort()
    return seen.instances.length === 2 && counts.join() === '2,2' && seen.owners.every((owner) => owner.owner !== null) ? seen : undefined
  })
  assert.equal(settled.mode, 'cluster')
  assert.equal(settled.partitions, PARTITIONS)
  assert.deepEqual(settled.instances.map((instance) => instance.self).sort(), [false, true])
  assert.ok(settled.stream !== null)
  const fromA = await status(a)
  assert.equal(fromA.cluster, settled.cluster)
  assert.notEqual(fromA.instance, settled.instance)

  // Prometheus: the two instances' owned partitions add up to all of them
  const owned = await Promise.all([a, b].map(async (app) => {
    const text = (await app.inject('/metrics')).body
    return Number(/^doorsense_cluster_partitions_owned (\d+)$/m.exec(text)?.[1])
  }))
  assert.equal(owned[0] + owned[1], PARTITIONS)

  const embedded = await buildTestApp(t)
  const alone = await status(embedded)
  assert.equal(alone.mode, 'embedded')
  assert.equal(alone.cluster, null)
  assert.deepEqual(alone.owners, [{ partition: 0, owner: alone.instance, lag: 0 }])
  assert.equal(alone.stream, null)
})

test('a batch is stored once in the stream whichever instance a retry reaches; a reused key with other frames is stored; bad frames store nothing', { skip }, async (t) => {
  const [a, b] = await twoInstances(t)
  const messages = async (): Promise<number> => (await status(a)).stream?.messages ?? -1
  const post = (app: App, key: string, body: unknown) => app.inject({
    method: 'POST', url: '/server/post/frames', headers: { 'idempotency-key': key }, payload: body as Record<string, unknown>
  })
  const body = framesBody(9)
  const first = await post(a, 'batch-1', body)
  assert.equal(first.statusCode, 200, first.body)
  assert.deepEqual(first.json(), { accepted: body.frames.length, rejected: [], labelled: 0 })
  assert.equal(await messages(), 1)
  // the Pi's retry reaches the other instance: answered the same, stored once
  const retry = await post(b, 'batch-1', body)
  assert.equal(retry.statusCode, 200, retry.body)
  assert.deepEqual(retry.json(), first.json())
  assert.equal(await messages(), 1)
  // the same key with other frames is another batch: stored, not dropped as a repeat
  assert.equal((await post(b, 'batch-1', framesBody(9, sessionSlice(2)))).statusCode, 200)
  assert.equal(await messages(), 2)
  // no key: every post is a batch of its own
  assert.equal((await a.inject({ method: 'POST', url: '/server/post/frames', payload: body })).statusCode, 200)
  assert.equal(await messages(), 3)
  // undecodable frames: a 400 and nothing in the stream
  const bad = await post(a, 'batch-2', { ID: 9, frames: ['not a frame'] })
  assert.equal(bad.statusCode, 400)
  assert.equal(await messages(), 3)
})

test('a binary batch takes the same way: stored once in the stream whichever instance a retry reaches; a bad body publishes nothing', { skip }, async (t) => {
  const [a, b] = await twoInstances(t)
  const messages = async (): Promise<number> => (await status(a)).stream?.messages ?? -1
  const lines = readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n').filter((line) => line.trim() !== '').slice(0, 30)
  const bytes = Buffer.from(encodeBinaryFrames(lines)?.bytes ?? [])
  const post = (app: App, key: string, body: Buffer) => app.inject({
    method: 'POST', url: '/server/post/frames?ID=9&layout=pi108', headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key }, payload: body
  })
  const first = await post(a, 'binary-1', bytes)
  assert.equal(first.statusCode, 200, first.body)
  assert.deepEqual(first.json(), { accepted: 30, rejected: [], labelled: 0 })
  assert.equal(await messages(), 1)
  const retry = await post(b, 'binary-1', bytes)
  assert.equal(retry.statusCode, 200, retry.body)
  assert.deepEqual(retry.json(), first.json())
  assert.equal(await messages(), 1, 'the retry on the other instance is stored once')
  assert.equal((await post(b, 'binary-1', bytes.subarray(108))).statusCode, 200, 'the same key with other bytes is another batch')
  assert.equal(await messages(), 2)
  const over = await post(a, 'binary-2', bytes.subarray(1))
  assert.equal(over.statusCode, 400)
  assert.equal(over.json().message, 'body of 3239 bytes is 29 pi108 frames of 108 bytes and 107 bytes over')
  assert.equal(await messages(), 2)
})

test('the Pis are shared through PostgreSQL: a Pi heard by one instance, and a name given on another, show on both', { skip }, async (t) => {
  const [a, b] = await twoInstances(t)
  const keepAlive = await a.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { ID: 12, NAME: 'pi-hall' } })
  assert.equal(keepAlive.statusCode, 200, keepAlive.body)
  const known = await waitFor('door 12 on the other instance', async () => {
    const response = await b.inject('/doors/12')
    return response.statusCode === 200 ? response.json<Door>() : undefined
  })
  assert.equal(known.name, 'pi-hall')

  const renamed = await b.inject({ method: 'PATCH', url: '/doors/12', headers: ADMIN, payload: { name: 'Hall door' } })
  assert.equal(renamed.statusCode, 200, renamed.body)
  await waitFor('the new name on the first instance', async () => (await a.inject('/doors/12')).json<Door>().name === 'Hall door' ? true : undefined)
  // the Pi's own NAME keeps arriving at the first instance; the door keeps the name given on the second
  await a.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { ID: 12, NAME: 'pi-hall-2' } })
  assert.equal((await a.inject('/doors/12')).json<Door>().name, 'Hall door')
})

test('a door that falls silent shows a frame rate of 0 on every instance, not its last rate', { skip, timeout: 60_000 }, async (t) => {
  const [a, b] = await twoInstances(t)
  await waitFor('every partition owned', async () => (await status(a)).owners.every((owner) => owner.owner !== null) ? true : undefined)
  const rateOn = async (app: App): Promise<number | undefined> => {
    const response = await app.inject('/doors/21')
    return response.statusCode === 200 ? response.json<Door>().frameRate : undefined
  }
  // three seconds of frames posted to both instances, whichever owns the door
  for (let second = 0; second < 3; second++) {
    for (const app of [a, b]) assert.equal((await app.inject({ method: 'POST', url: '/server/post/frames', payload: framesBody(21) })).statusCode, 200)
    await sleep(1000)
  }
  await waitFor('a frame rate above 0 on both', async () => ((await rateOn(a)) ?? 0) > 0 && ((await rateOn(b)) ?? 0) > 0 ? true : undefined)
  // silent from here: the rate falls to 0 within its 5 s span, on the owner and on the other alike
  await waitFor('a frame rate of 0 on both', async () => (await rateOn(a)) === 0 && (await rateOn(b)) === 0 ? true : undefined, 20_000)
})
