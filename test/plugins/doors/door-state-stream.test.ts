import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { DoorSmoother } from '../../../domain/smoother.js'
import type { BatchResponse, DoorState } from '../../../schemas/inference.js'
import { buildTestApp } from '../../helper.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'

/** A real HTTP client reading `event: door` messages off the stream. */
function openStream (port: number): Promise<{
  response: IncomingMessage,
  events: DoorState[],
  next: (count: number) => Promise<DoorState[]>,
  ended: Promise<void>
}> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: '/ml/get/door_state/stream', headers: { accept: 'text/event-stream' } }, (response) => {
      const events: DoorState[] = []
      const waiters: Array<() => void> = []
      let buffer = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const lines = message.split('\n')
          if (!lines.includes('event: door')) continue
          const data = lines.find((line) => line.startsWith('data: '))
          events.push(JSON.parse(data!.slice(6)) as DoorState)
          for (const waiter of waiters.splice(0)) waiter()
        }
      })
      const ended = once(response, 'end').then(() => {})
      const next = async (count: number) => {
        while (events.length < count) await new Promise<void>((resolve) => waiters.push(resolve))
        return events.slice(0, count)
      }
      resolve({ response, events, next, ended })
    })
    request.on('error', reject)
    request.end()
  })
}

test('door-state stream over a real listening server: snapshot, every change in order, ended by app.close()', { timeout: 120_000 }, async (t) => {
  // window 1 and hold 1: every change of the predicted angle is a door-state change
  const app = await buildTestApp(t, { DOOR_WINDOW: '1', DOOR_HOLD: '1' })
  await trainThrough(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  const stream = await openStream(port)
  assert.equal(stream.response.statusCode, 200)
  assert.match(String(stream.response.headers['content-type']), /^text\/event-stream/)

  // frames alternating between the closed and the widest angle, from device 9
  const closed = sessionSlice(6, 300).filter((row) => row.angle === 0)
  const wide = sessionSlice(6, 300).filter((row) => row.angle === 90)
  const frames = closed.flatMap((row, i) => [row, wide[i]]).map((row) => Array.from(row.features))
  const posted = await fetch(`http://127.0.0.1:${port}/ml/post/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ID: 9, frames })
  })
  assert.equal(posted.status, 200)
  const body = await posted.json() as BatchResponse

  // the changes the server's smoother must have announced, computed from its own answers
  const smoother = new DoorSmoother({ window: 1, hold: 1 })
  const expected: Array<[string, number | null]> = []
  for (const result of body.results) {
    if (smoother.push(result.probabilities ?? [], body.labels, 0)) expected.push([smoother.door.state, smoother.door.angle])
  }
  assert.ok(expected.length >= 1)
  const events = await stream.next(expected.length)
  assert.deepEqual(events.map((event) => [event.state, event.angle]), expected)
  assert.ok(events.every((event) => event.device === 9))

  // a second client first gets the current state of every door
  const late = await openStream(port)
  const [snapshot] = await late.next(1)
  const listed = await (await fetch(`http://127.0.0.1:${port}/ml/get/door_state`)).json() as { doors: DoorState[] }
  assert.deepEqual(snapshot, listed.doors[0])
  assert.equal(snapshot.device, 9)

  // closing the app ends every open stream (and does not hang on them)
  const closing = app.close()
  await Promise.all([stream.ended, late.ended])
  await closing
  assert.equal(stream.events.length, expected.length, 'no event after the ones announced')
})
