/**
 * Issue 20, "nothing grows outside retention" for doors: a removed door takes
 * its unlabelled frames along, idle doors cost nothing, the list pages,
 * per-device metric series are bounded, a rename reaches the doors stream,
 * and frames by the /ml routes make a door as /server/post/frames does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../../../core/app.js'
import type { Door, DoorList } from '../../../schemas/doors.js'
import { rawPiFrames, stringified } from '../../fixtures/frames.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'
import { ADMIN, buildTestApp } from '../../helper.js'

const framesOf = (app: App, device: number) => (app.storage.db.prepare('SELECT COUNT(*) AS n FROM rpi_frames WHERE device = ?').get(device) as { n: number }).n

async function postFrames (app: App, device: number, count = 5): Promise<void> {
  const answer = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: device, frames: rawPiFrames().slice(0, count) } })
  assert.equal(answer.statusCode, 200, answer.body)
}

async function keepAlive (app: App, device: number, name: string): Promise<void> {
  const answer = await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: name, ID: device } })
  assert.equal(answer.statusCode, 200, answer.body)
}

test('DELETE /doors/{id} takes the door\'s unlabelled frames along, and only its own', async (t) => {
  const app = await buildTestApp(t)
  await postFrames(app, 3, 40)
  await postFrames(app, 4, 10)
  assert.equal(framesOf(app, 3), 40)
  const removed = await app.inject({ method: 'DELETE', url: '/doors/3', headers: ADMIN })
  assert.equal(removed.statusCode, 204)
  for (let i = 0; i < 100 && framesOf(app, 3) > 0; i++) await sleep(10)
  assert.equal(framesOf(app, 3), 0, 'the removed door\'s frames are gone')
  assert.equal(framesOf(app, 4), 10, 'another door\'s stay')
})

test('idle doors cost nothing: with 2,000 silent doors a refresh looks at none of them; those with frames are re-announced', async (t) => {
  const app = await buildTestApp(t)
  for (let device = 0; device < 2000; device++) app.devices.keepAlive({ id: device, name: `pi-${device}`, addr: '127.0.0.1' })
  await postFrames(app, 7)
  let looked = 0
  const get = app.doors.get.bind(app.doors)
  app.doors.get = (id: number) => { looked++; return get(id) }
  const announced: number[] = []
  app.doors.on('door', (door) => announced.push(door.device))
  // the refresh runs once a second
  await sleep(2200)
  assert.ok(looked <= 4, `a refresh looked at ${looked} doors, not the 2,000 idle ones`)
  assert.ok(looked >= 1, 'the door with frames was looked at')
  assert.ok(announced.every((device) => device === 7), `only door 7 was re-announced: ${[...new Set(announced)].join(', ')}`)
  // once its rate has fallen to 0 and that was said, door 7 is idle too
  assert.deepEqual(app.doors.states.recentlyFramed(Date.now() + 60_000), [7])
  assert.deepEqual(app.doors.states.recentlyFramed(Date.now() + 60_000), [])
})

test('GET /doors pages with ?limit and ?after; without them every door', async (t) => {
  const app = await buildTestApp(t)
  for (let device = 1; device <= 25; device++) app.devices.keepAlive({ id: device, name: `pi-${device}`, addr: '127.0.0.1' })
  const page = async (query: string) => {
    const answer = await app.inject({ method: 'GET', url: `/doors${query}` })
    assert.equal(answer.statusCode, 200, answer.body)
    return answer.json<DoorList>()
  }
  const all = await page('')
  assert.equal(all.doors.length, 25)
  assert.equal(all.next, null)
  const seen: number[] = []
  let after: number | null = -1
  for (let pages = 0; after !== null; pages++) {
    assert.ok(pages < 5)
    const next: DoorList = await page(`?limit=10${after >= 0 ? `&after=${after}` : ''}`)
    seen.push(...next.doors.map((door: Door) => door.device))
    after = next.next
  }
  assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1))
  assert.equal((await app.inject({ method: 'GET', url: '/doors?limit=0' })).statusCode, 400)
  assert.equal((await app.inject({ method: 'GET', url: '/doors?after=x' })).statusCode, 400)
})

test('per-device metric series stop at METRICS_MAX_DEVICES: the rest count under device="other"', async (t) => {
  const app = await buildTestApp(t, { METRICS_MAX_DEVICES: '3' })
  for (let device = 10; device < 20; device++) await postFrames(app, device, 2)
  const text = (await app.inject('/metrics')).body
  const series = [...text.matchAll(/^doorsense_frames_received_total\{device="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])])
  assert.deepEqual(series, [['10', 2], ['11', 2], ['12', 2], ['other', 14]])
  const recalibration = [...text.matchAll(/^doorsense_door_needs_recalibration\{device="([^"]+)"\}/gm)].map((m) => m[1])
  assert.ok(recalibration.length <= 4, `needs-recalibration series: ${recalibration.join(', ')}`)
})

test('a keep-alive with a new name reaches the doors stream', async (t) => {
  const app = await buildTestApp(t)
  await keepAlive(app, 5, 'hall')
  const events: Door[] = []
  app.doors.on('door', (door) => events.push(door))
  await keepAlive(app, 5, 'front door')
  await sleep(20)
  assert.ok(events.some((door) => door.device === 5 && door.name === 'front door'), `events: ${JSON.stringify(events.map((door) => door.name))}`)
  assert.equal((await app.inject('/doors/5')).json<Door>().name, 'front door')
})

test('frames by /ml/post/batch and /ml/post/inference make their door, as /server/post/frames does', async (t) => {
  const app = await buildTestApp(t)
  await trainThrough(app, 20, { epochs: 2 })
  const frames = sessionSlice(2).map(stringified)
  assert.equal((await app.inject('/doors/8')).statusCode, 404)
  const batch = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 8, frames } })
  assert.equal(batch.statusCode, 200, batch.body)
  assert.equal((await app.inject('/doors/8')).statusCode, 200)
  const single = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { ID: 9, payload: frames[0] } })
  assert.equal(single.statusCode, 200, single.body)
  const door = (await app.inject('/doors/9')).json<Door>()
  assert.equal(door.device, 9)
  assert.equal(door.live, true)
})
