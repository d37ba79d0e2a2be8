import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Door } from '../../../schemas/doors.js'
import type { BatchResponse } from '../../../schemas/inference.js'
import { DoorSmoother } from '../../../domain/smoother.js'
import { buildTestApp } from '../../helper.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'

test('a door that moves several times within one request is announced once, after it, with its latest state', async (t) => {
  // the periodic re-announcement ticks when the test says: once between the request and the end of its turn
  t.mock.timers.enable({ apis: ['setInterval'] })
  // window 1 and hold 1: every change of the predicted angle is a door-state change
  const app = await buildTestApp(t, { DOOR_WINDOW: '1', DOOR_HOLD: '1' })
  await trainThrough(app)
  // a door is a device doorsense knows: its Pi says hello first
  assert.equal((await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'hall', ID: 9 } })).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  const announced: Door[] = []
  app.doors.on('door', (door) => { if (door.device === 9) announced.push(door) })

  const closed = sessionSlice(6, 300).filter((row) => row.angle === 0)
  const wide = sessionSlice(6, 300).filter((row) => row.angle === 90)
  const frames = closed.flatMap((row, i) => [row, wide[i]]).map((row) => Array.from(row.features))
  const posted = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 9, frames } })
  assert.equal(posted.statusCode, 200, posted.body)
  assert.equal(announced.length, 0, 'nothing is announced inside the request that moved the door')

  // how often the door moved in that request, from the server's own answers
  const body = posted.json<BatchResponse>()
  const smoother = new DoorSmoother({ window: 1, hold: 1 })
  const moves = body.results.filter((result) => smoother.push(result.probabilities ?? [], body.labels, 0)).length
  assert.ok(moves >= 2, `the frames moved the door ${moves} times`)

  t.mock.timers.tick(1000)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(announced.length, 1, `${moves} moves, one announcement, even when the re-announcement ticks before the turn ends`)
  const listed = (await app.inject({ method: 'GET', url: '/doors/9' })).json<Door>()
  assert.deepEqual([announced[0].state, announced[0].angle], [listed.state, listed.angle])
  assert.deepEqual([announced[0].state, announced[0].angle], [smoother.door.state, smoother.door.angle], 'the latest state, not a stale one')
})
