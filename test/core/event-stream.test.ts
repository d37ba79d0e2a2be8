import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import Fastify from 'fastify'
import { EventStreamHub, EventStreamSlots, sseEvent, STREAM_RETRY_AFTER_S } from '../../core/event-stream.js'
import { installErrorHandlers } from '../../core/errors.js'
import { buildTestApp } from '../helper.js'

/** A real client of a stream: every `event: n` number it has read, in order. */
async function subscribe (port: number): Promise<{ numbers: number[], until: (count: number) => Promise<number[]>, ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: '/stream' }, (response) => {
      const numbers: number[] = []
      let buffer = ''
      let wake = (): void => {}
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const data = buffer.slice(0, end).split('\n').find((line) => line.startsWith('data: '))
          buffer = buffer.slice(end + 2)
          if (data) numbers.push(JSON.parse(data.slice(6)) as number)
        }
        wake()
      })
      const ended = new Promise<void>((resolve) => response.on('end', resolve))
      const until = async (count: number): Promise<number[]> => {
        while (numbers.length < count) await new Promise<void>((resolve) => { wake = resolve })
        return numbers
      }
      resolve({ numbers, until, ended })
    })
    request.on('error', reject)
    request.end()
  })
}

test('broadcasts go out at the end of the turn, a whole turn in one write per client, every event in order; a later client gets only its snapshot', async (t) => {
  const hub = new EventStreamHub()
  const opened: ServerResponse[] = []
  const app = Fastify()
  app.get('/stream', (request, reply) => {
    hub.open(request, reply, sseEvent('n', -opened.length - 1))
    opened.push(reply.raw)
  })
  t.after(async () => { hub.closeAll(); await app.close() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  const first = await subscribe(port)
  await first.until(1)
  let writes = 0
  const write = opened[0].write.bind(opened[0]) as (chunk: string) => boolean
  opened[0].write = ((chunk: string) => { writes++; return write(chunk) }) as ServerResponse['write']

  for (let n = 0; n < 100; n++) hub.broadcast(sseEvent('n', n))
  assert.equal(writes, 0, 'nothing is written inside the turn that broadcast (the request that caused it is answered first)')
  // a client that opens now: its snapshot already holds what was broadcast, so it is not sent the 100 again
  const second = await subscribe(port)
  assert.equal(writes, 1, 'the 100 events went out in one write, before the second client was added')
  assert.deepEqual(await first.until(101), [-1, ...Array.from({ length: 100 }, (_, n) => n)])
  hub.broadcast(sseEvent('n', 100))
  hub.closeAll()
  await Promise.all([first.ended, second.ended])
  assert.deepEqual(first.numbers.slice(-2), [99, 100], 'closeAll writes what was broadcast before it ends the streams')
  assert.deepEqual(second.numbers, [-2, 100])
})

/** What a GET of an event stream answered: the status, headers and, for a refusal, the JSON body; `close` ends an open stream. */
interface StreamAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
  close: () => Promise<void>
}

/** Opens `path` on `port` and resolves once the head (and a refusal's whole body) has arrived. */
function openStream (port: number, path: string): Promise<StreamAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } }, (response) => {
      // destroying an open stream aborts its response: expected, not an error
      response.on('error', () => {})
      const close = async (): Promise<void> => {
        if (response.destroyed) return
        // not events.once: it rejects on the abort error that destroying an open stream causes
        const closed = new Promise((resolve) => response.once('close', resolve))
        request.destroy()
        await closed
      }
      if (response.statusCode === 200) {
        response.resume()
        resolve({ status: 200, headers: response.headers, body: undefined, close })
        return
      }
      let text = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text), close }))
    })
    request.on('error', reject)
    request.end()
  })
}

/** Polls until `check` holds (a closed client reaches the server a moment later). */
async function eventually (check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 5000) throw new Error(`timed out waiting for ${what}`)
    await delay(10)
  }
}

test('streams are capped per hub and across hubs: past the cap a 503 with Retry-After and the usual body; a slot frees when a client leaves', async (t) => {
  const slots = new EventStreamSlots(3)
  const doors = new EventStreamHub({ slots, maxStreams: 2 })
  const progress = new EventStreamHub({ slots })
  const app = Fastify()
  installErrorHandlers(app)
  app.get('/doors', (request, reply) => { doors.open(request, reply, sseEvent('n', 0)) })
  app.get('/progress', (request, reply) => { progress.open(request, reply, sseEvent('n', 0)) })
  const opened: StreamAnswer[] = []
  t.after(async () => {
    for (const stream of opened) await stream.close()
    doors.closeAll()
    progress.closeAll()
    await app.close()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const open = async (path: string): Promise<StreamAnswer> => {
    const answer = await openStream(port, path)
    opened.push(answer)
    return answer
  }

  assert.equal((await open('/doors')).status, 200)
  assert.equal((await open('/doors')).status, 200)
  const perHub = await open('/doors')
  assert.equal(perHub.status, 503, 'a third stream on a hub that takes two')
  assert.equal(perHub.headers['retry-after'], String(STREAM_RETRY_AFTER_S))
  assert.deepEqual(Object.keys(perHub.body as object).sort(), ['code', 'error', 'message', 'statusCode'])
  assert.equal((perHub.body as { code: string }).code, 'DS_OVERLOADED')
  assert.match((perHub.body as { message: string }).message, /too many event streams are open \(at most 2 on this route\)/)

  assert.equal((await open('/progress')).status, 200, 'the other hub still has a shared slot')
  assert.equal(slots.open, 3)
  const shared = await open('/progress')
  assert.equal(shared.status, 503, 'every shared slot is taken')
  assert.equal(shared.headers['retry-after'], String(STREAM_RETRY_AFTER_S))
  assert.match((shared.body as { message: string }).message, /at most 3 in all \(MAX_EVENT_STREAMS\)/)
  assert.equal(slots.open, 3, 'a refused stream holds no slot')

  // a client that leaves gives its slot back, once, whichever of its close events comes first
  await opened[0]?.close()
  await eventually(() => slots.open === 2, 'the slot of the closed stream')
  assert.equal(doors.size, 1)
  assert.equal((await open('/progress')).status, 200)
  assert.equal(slots.open, 3)

  // closeAll gives back every slot of its hub
  doors.closeAll()
  assert.equal(slots.open, 2)
})

test('the app caps its event streams at MAX_EVENT_STREAMS in all: a third stream on any stream route gets 503 + Retry-After', async (t) => {
  const app = await buildTestApp(t, { MAX_EVENT_STREAMS: '2' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const opened: StreamAnswer[] = []
  t.after(async () => { for (const stream of opened) await stream.close() })
  for (const path of ['/doors/stream', '/ml/get/door_state/stream']) {
    const answer = await openStream(port, path)
    opened.push(answer)
    assert.equal(answer.status, 200, path)
  }
  assert.equal(app.eventStreamSlots.open, 2)
  for (const path of ['/training/get/progress/stream', '/doors/stream', '/ml/get/door_state/stream']) {
    const refused = await openStream(port, path)
    opened.push(refused)
    assert.equal(refused.status, 503, `${path} past MAX_EVENT_STREAMS`)
    assert.equal(refused.headers['retry-after'], String(STREAM_RETRY_AFTER_S), path)
    assert.match(String(refused.headers['content-type']), /^application\/json/, path)
    assert.equal((refused.body as { statusCode: number }).statusCode, 503)
    assert.equal((refused.body as { code: string }).code, 'DS_OVERLOADED')
    assert.match((refused.body as { message: string }).message, /at most 2 in all \(MAX_EVENT_STREAMS\)/)
  }
  // one leaves: another may come
  await opened[0]?.close()
  await eventually(() => app.eventStreamSlots.open === 1, 'the slot of the closed stream')
  const again = await openStream(port, '/training/get/progress/stream')
  opened.push(again)
  assert.equal(again.status, 200)
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  assert.match(metrics.body, /^doorsense_event_streams_open 2$/m)
})
