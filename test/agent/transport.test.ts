/**
 * The agent against a real listening server: HttpTransport's reading of each
 * answer, and whole agent runs with the recorded lines, a server that comes
 * up late, and a queue too small for the outage.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, type AgentOptions } from '../../agent/agent.js'
import { HttpTransport, type HttpTransportOptions } from '../../agent/transport.js'
import { storedFrame } from '../../plugins/rpi-servers/frame-store.js'
import { framesReceived, freePort, getJson, listen } from '../fixtures/live-server.js'
import { esp32Lines as recordedEsp32Lines, rawPiLines } from '../fixtures/frames.js'

const esp32Lines = recordedEsp32Lines()
const piFrames = rawPiLines()
const DEVICE_TOKEN = 'pi-device-token-42'

function transport (url: string, options: Partial<HttpTransportOptions> = {}): HttpTransport {
  return new HttpTransport({ server: url, name: 'pi-hall', id: 11, infer: false, timeoutMs: 5000, ...options })
}

const never = new AbortController().signal

/** Repeats a transport call while the server sheds load (503): these tests are about the other answers. */
async function answered<T> (call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const outcome = await call()
      const shed = typeof outcome === 'object' && outcome !== null && 'reason' in outcome && String(outcome.reason).startsWith('503')
      if (!shed || attempt === 20) return outcome
    } catch (err) {
      if (!/answered 503/.test((err as Error).message) || attempt === 20) throw err
    }
    await sleep(1000)
  }
}

/** An agent stopped after the test even when an assertion failed (else it would retry forever). */
function agentFor (t: TestContext, options: AgentOptions): Agent {
  const agent = new Agent(options)
  t.after(() => agent.finish(0))
  return agent
}

test('HttpTransport reads each answer of the real routes', async (t) => {
  const { url } = await listen(t, { BODY_LIMIT: '4096' })
  const pi = transport(url)

  await answered(() => pi.keepAlive(never))
  const live = await getJson<Array<{ id: number, name: string }>>(`${url}/app/get/list_of_servers`)
  assert.deepEqual(live.map(({ id, name }) => ({ id, name })), [{ id: 11, name: 'pi-hall' }])

  const stored = await answered(() => pi.send([esp32Lines[0], piFrames[0], '[1, 2, 3]'], never))
  assert.deepEqual(stored, {
    kind: 'stored',
    accepted: 2,
    rejected: [{ index: 2, reason: 'frame must hold 106 features, 108 raw Pi values or 128 raw ESP32 values, got 3' }]
  })
  assert.equal(await framesReceived(url, 11), 2)

  const refused = await answered(() => pi.send(['[1, 2, 3]'], never))
  assert.equal(refused.kind, 'refused')
  assert.equal(refused.kind === 'refused' && refused.status, 400)

  // 4 KiB body limit: 40 raw Pi frames as bytes (4,320 B) do not fit, nor do 13 ESP32 lines as JSON (~7 KB)
  const tooLarge = await answered(() => pi.send(piFrames.slice(0, 40), never))
  assert.equal(tooLarge.kind, 'too-large')
  const tooLargeJson = await answered(() => transport(url, { binary: false }).send(esp32Lines, never))
  assert.equal(tooLargeJson.kind, 'too-large')
  assert.equal(await framesReceived(url, 11), 2, 'nothing stored by the refused batches')
})

/** A fetch that records the Content-Type (and the Idempotency-Key, in `keys` when given) of every request it sends. */
function countingFetch (types: string[], keys: Array<string | null> = []): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    types.push(request.headers.get('content-type') ?? '')
    keys.push(request.headers.get('idempotency-key'))
    return await fetch(request)
  }
}

const BINARY = 'application/octet-stream'
const JSON_TYPE = 'application/json'

test('HttpTransport sends raw frames of one layout as bytes, anything else as JSON; the server stores the same either way', async (t) => {
  const { app, url } = await listen(t)
  const types: string[] = []
  const pi = transport(url, { fetch: countingFetch(types) })
  const json = transport(url, { id: 12, binary: false })
  for (const batch of [piFrames.slice(0, 100), esp32Lines, [...esp32Lines.slice(0, 2), piFrames[0]], [piFrames[1], '[1, 2, 3]']]) {
    const sent = await answered(() => pi.send(batch, never))
    assert.equal(sent.kind, 'stored')
    assert.equal((await answered(() => json.send(batch, never))).kind, 'stored')
  }
  assert.deepEqual(types, [BINARY, BINARY, JSON_TYPE, JSON_TYPE], 'pi108, esp128, then mixed layouts and a bad line as JSON')
  const stored = (device: number) => app.storage.db.prepare('SELECT encoding, features FROM rpi_frames WHERE device = ? ORDER BY id').all(device)
  assert.equal(stored(11).length, 100 + 13 + 3 + 1)
  assert.deepEqual(stored(11), stored(12), 'the same frames stored, byte for byte')

  // inference mode: /ml/post/batch takes bytes too (no model yet: the same 503 either way)
  const infer = transport(url, { infer: true, fetch: countingFetch(types) })
  const noModel = await infer.send(piFrames.slice(0, 5), never)
  assert.equal(noModel.kind, 'retry')
  assert.match(noModel.kind === 'retry' ? noModel.reason : '', /^503 no model/)
  assert.equal(types.at(-1), BINARY)
})

/**
 * A stand-in for a doorsense older than binary batches in front of a real
 * one: a binary body is answered 415 as that version answered it, anything
 * else is handed on. Counts what it refused.
 */
async function olderServer (t: TestContext, target: string): Promise<{ url: string, refused: () => number }> {
  let refused = 0
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const type = request.headers['content-type'] ?? ''
      if (type.startsWith(BINARY)) {
        refused++
        response.writeHead(415, { 'content-type': 'application/json; charset=utf-8' })
        response.end(JSON.stringify({
          statusCode: 415,
          error: 'Unsupported Media Type',
          message: `unsupported Content-Type "${type}" (JSON routes take application/json, the CSV import text/csv)`,
          code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        }))
        return
      }
      const headers: Record<string, string> = {}
      for (const name of ['content-type', 'authorization', 'idempotency-key']) {
        const value = request.headers[name]
        if (typeof value === 'string') headers[name] = value
      }
      fetch(`${target}${request.url ?? '/'}`, { method: request.method, headers, body: chunks.length > 0 ? Buffer.concat(chunks) : undefined })
        .then(async (answer) => {
          response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' })
          response.end(Buffer.from(await answer.arrayBuffer()))
        }, () => { response.writeHead(502).end() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, refused: () => refused }
}

test('against a server that refuses bytes (415), the agent sends the same batch as JSON at once, and JSON from then on', async (t) => {
  const { url: real } = await listen(t)
  const older = await olderServer(t, real)
  const types: string[] = []
  const keys: Array<string | null> = []
  const logs: string[] = []
  const pi = transport(older.url, { fetch: countingFetch(types, keys), log: (line) => logs.push(line) })
  const agent = agentFor(t, { transport: pi, batchSize: 50, flushMs: 20 })
  agent.start()
  for (const line of piFrames) agent.push(line)
  const summary = await agent.finish()
  assert.deepEqual({ sent: summary.sent, rejected: summary.rejected, dropped: summary.dropped }, { sent: 319, rejected: 0, dropped: 0 })
  assert.equal(await framesReceived(real, 11), 319, 'each frame stored once')
  assert.equal(older.refused(), 1, 'one binary batch refused')
  const refused = types.indexOf(BINARY)
  assert.ok(refused >= 0)
  assert.deepEqual(types.slice(refused + 1).filter((type) => type !== JSON_TYPE), [], 'JSON from then on (keep-alives are JSON too)')
  const resent = keys.indexOf(keys[refused] ?? '', refused + 1)
  assert.ok(resent > refused && types[resent] === JSON_TYPE, 'the refused batch went again as JSON with its Idempotency-Key')
  const fellBack = new RegExp(String.raw`^the server does not take binary batches \(415 unsupported Content-Type "application/octet-stream".*\): ` +
    'sending JSON, trying binary again in 60 min$')
  assert.ok(logs.some((line) => fellBack.test(line)), logs.join('\n'))
})

test('binary is tried again once binaryRetryMs has passed: a server upgraded meanwhile gets bytes again', async (t) => {
  const { url: real } = await listen(t)
  const older = await olderServer(t, real)
  const types: string[] = []
  const pi = transport(older.url, { fetch: countingFetch(types), binaryRetryMs: 200 })
  for (const batch of [piFrames.slice(0, 10), piFrames.slice(10, 20)]) assert.equal((await answered(() => pi.send(batch, never))).kind, 'stored')
  assert.deepEqual(types, [BINARY, JSON_TYPE, JSON_TYPE], 'one refusal, then JSON')
  await sleep(250)
  assert.equal((await answered(() => pi.send(piFrames.slice(20, 30), never))).kind, 'stored')
  assert.deepEqual(types.slice(3), [BINARY, JSON_TYPE], 'tried again after 200 ms')
  assert.equal(older.refused(), 2)
  assert.equal(await framesReceived(real, 11), 30)
})

test('against a current server the agent sends every batch of raw frames as bytes', async (t) => {
  const { app, url } = await listen(t)
  const types: string[] = []
  // 319 = 11 × 29: the Pi frames fill 11 batches, the 13 ESP32 lines a twelfth (all pushed before the sender runs)
  const agent = agentFor(t, { transport: transport(url, { fetch: countingFetch(types) }), batchSize: 29 })
  agent.start()
  for (const line of piFrames) agent.push(line)
  for (const line of esp32Lines) agent.push(line)
  const summary = await agent.finish()
  assert.equal(summary.sent, 319 + 13)
  assert.equal(await framesReceived(url, 11), 332)
  assert.equal(types.filter((type) => type === BINARY).length, 12, types.join(', '))
  assert.deepEqual(types.filter((type) => type !== BINARY && type !== JSON_TYPE), [])
  const encodings = app.storage.db.prepare('SELECT encoding FROM rpi_frames WHERE device = 11 ORDER BY id').all() as Array<{ encoding: string }>
  assert.deepEqual(encodings.map(({ encoding }) => encoding), [...Array(319).fill('raw-pi'), ...Array(13).fill('raw-esp32')])
})

/** A fetch that records each request's Content-Encoding and the bytes of its body as sent. */
function encodingFetch (sent: Array<{ encoding: string | null, bytes: number }>): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    const body = await request.clone().arrayBuffer()
    sent.push({ encoding: request.headers.get('content-encoding'), bytes: body.byteLength })
    return await fetch(request)
  }
}

test('once an answer announces gzip, batches go gzipped: fewer bytes, the same frames stored; compress: false sends them plain', async (t) => {
  const { app, url } = await listen(t)
  const sent: Array<{ encoding: string | null, bytes: number }> = []
  const plainSent: Array<{ encoding: string | null, bytes: number }> = []
  const pi = transport(url, { fetch: encodingFetch(sent) })
  const plain = transport(url, { id: 12, compress: false, fetch: encodingFetch(plainSent) })
  for (const batch of [piFrames.slice(0, 100), piFrames.slice(100, 200), esp32Lines]) {
    assert.equal((await answered(() => pi.send(batch, never))).kind, 'stored')
    assert.equal((await answered(() => plain.send(batch, never))).kind, 'stored')
  }
  assert.deepEqual(sent.map(({ encoding }) => encoding), [null, 'gzip', 'gzip'], 'plain until the first answer announced gzip')
  assert.deepEqual(plainSent.map(({ encoding }) => encoding), [null, null, null])
  assert.equal(plainSent[1]?.bytes, 100 * 108)
  const gzipped = sent[1]?.bytes ?? Infinity
  assert.ok(gzipped < 0.6 * 100 * 108, `100 frames gzipped: ${gzipped} bytes`)
  const stored = (device: number) => app.storage.db.prepare('SELECT encoding, features FROM rpi_frames WHERE device = ? ORDER BY id').all(device)
  assert.equal(stored(11).length, 213)
  assert.deepEqual(stored(11), stored(12), 'the same frames stored, byte for byte')
})

test('a server that announced gzip and then refuses it (415) gets the same batch plain at once, and plain batches from then on', async (t) => {
  const { url: real } = await listen(t)
  let refusedGzip = 0
  // in front of a real doorsense: every answer announces gzip, every gzipped body is refused as a server without it would
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      if (request.headers['content-encoding'] !== undefined) {
        refusedGzip++
        response.writeHead(415, { 'content-type': 'application/json; charset=utf-8', 'accept-encoding': 'gzip' })
        response.end(JSON.stringify({ statusCode: 415, error: 'Unsupported Media Type', message: 'no codings here' }))
        return
      }
      const headers: Record<string, string> = {}
      for (const name of ['content-type', 'idempotency-key']) {
        const value = request.headers[name]
        if (typeof value === 'string') headers[name] = value
      }
      const query = request.url ?? '/'
      fetch(`${real}${query}`, { method: request.method, headers, body: Buffer.concat(chunks) })
        .then(async (answer) => {
          response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain', 'accept-encoding': 'gzip' })
          response.end(Buffer.from(await answer.arrayBuffer()))
        }, () => { response.writeHead(502).end() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  const front = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const logs: string[] = []
  const sent: Array<{ encoding: string | null, bytes: number }> = []
  const pi = transport(front, { fetch: encodingFetch(sent), log: (line) => logs.push(line) })
  for (const batch of [piFrames.slice(0, 10), piFrames.slice(10, 20), piFrames.slice(20, 30)]) {
    assert.equal((await answered(() => pi.send(batch, never))).kind, 'stored')
  }
  assert.deepEqual(sent.map(({ encoding }) => encoding), [null, 'gzip', null, null])
  assert.equal(refusedGzip, 1)
  assert.equal(await framesReceived(real, 11), 30, 'each frame stored once')
  assert.match(logs[0] ?? '', /^the server refused a gzipped batch \(415 no codings here\): sending batches plain for 60 min$/)
})

test('HttpTransport: an unreachable server means retry; a wrong token means refused', async (t) => {
  const down = transport(`http://127.0.0.1:${await freePort()}`)
  assert.deepEqual(await down.send([piFrames[0]], never), { kind: 'retry', reason: 'ECONNREFUSED' })
  await assert.rejects(down.keepAlive(never), /ECONNREFUSED/)

  const { url } = await listen(t, { DEVICE_TOKEN })
  const stranger = transport(url, { token: 'not-the-device-token' })
  await assert.rejects(answered(() => stranger.keepAlive(never)), /keep-alive answered 401: wrong device token/)
  const refused = await answered(() => stranger.send([piFrames[0]], never))
  assert.deepEqual(refused, { kind: 'refused', status: 401, reason: '401 wrong device token' })
  const member = transport(url, { token: DEVICE_TOKEN })
  await answered(() => member.keepAlive(never))
  assert.equal((await answered(() => member.send([piFrames[0]], never))).kind, 'stored')
  assert.equal(await framesReceived(url, 11), 1)
})

test('HttpTransport: 503 and 429 mean retry (with Retry-After); a 2xx that is not JSON is refused, not resent', async (t) => {
  // a stand-in for an overloaded server, a rate limiter and a web server that is not doorsense
  const answers = [
    { status: 503, type: 'application/json', body: '{"statusCode":503,"error":"Service Unavailable","message":"Service Unavailable"}', retryAfter: '2' },
    { status: 429, type: 'application/json', body: '{"statusCode":429,"error":"Too Many Requests","message":"slow down"}' },
    { status: 502, type: 'text/html', body: '<html>Bad Gateway</html>' },
    { status: 200, type: 'text/html', body: '<html>It works!</html>' }
  ]
  let calls = 0
  const server = createServer((request, response) => {
    const answer = answers[calls++]
    response.writeHead(answer.status, { 'content-type': answer.type, ...(answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}) })
    request.resume().on('end', () => response.end(answer.body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  const pi = transport(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  assert.deepEqual(await pi.send([piFrames[0]], never), { kind: 'retry', reason: '503 Service Unavailable', retryAfterMs: 2000 })
  assert.deepEqual(await pi.send([piFrames[0]], never), { kind: 'retry', reason: '429 slow down' })
  assert.deepEqual(await pi.send([piFrames[0]], never), { kind: 'retry', reason: '502 <html>Bad Gateway</html>' })
  const notDoorsense = await pi.send([piFrames[0]], never)
  assert.equal(notDoorsense.kind, 'refused')
  assert.match(notDoorsense.kind === 'refused' ? notDoorsense.reason : '', /not JSON .*is --server a doorsense server\?/)
})

test('the agent forwards the 13 ESP32-CSI-Tool lines and the 319 raw Pi frames; the server counts every one', async (t) => {
  const { url } = await listen(t, { DEVICE_TOKEN })
  const agent = agentFor(t, { transport: transport(url, { token: DEVICE_TOKEN }), batchSize: 64 })
  agent.start()
  for (const line of ['ets Jun  8 2016 00:22:57', ...esp32Lines, 'rst:0x1 (POWERON_RESET)', ...piFrames]) agent.push(line)
  const summary = await agent.finish()
  assert.equal(summary.read, 13 + 319 + 2)
  assert.equal(summary.skipped, 2)
  assert.equal(summary.sent, 13 + 319)
  assert.equal(summary.rejected + summary.dropped, 0)
  assert.ok(summary.keepAlives >= 1)
  assert.equal(await framesReceived(url, 11), 13 + 319)
  const live = await getJson<Array<{ id: number }>>(`${url}/app/get/list_of_servers`)
  assert.deepEqual(live.map(({ id }) => id), [11])
})

test('server down, then up: the frames arrive after backoff, none twice', async (t) => {
  const port = await freePort()
  const logs: string[] = []
  const agent = agentFor(t, {
    transport: transport(`http://127.0.0.1:${port}`),
    batchSize: 50,
    flushMs: 20,
    backoff: { initialMs: 50, maxMs: 400, factor: 2, jitter: 0.5 },
    log: (line) => logs.push(line)
  })
  agent.start()
  for (const line of piFrames.slice(0, 200)) agent.push(line)
  await sleep(600)
  assert.equal(agent.stats.sent, 0)
  assert.ok(agent.stats.retries >= 2, `${agent.stats.retries} retries while down`)
  for (const line of [...esp32Lines, ...piFrames.slice(200)]) agent.push(line)

  const { app, url } = await listen(t, {}, port)
  const summary = await agent.finish(15_000)
  assert.equal(summary.sent, 332)
  assert.equal(summary.dropped, 0)
  assert.equal(await framesReceived(url, 11), 332, 'each frame stored once')
  // the stored frames are exactly the input, in order: nothing twice, nothing lost
  const stored = app.storage.db.prepare('SELECT encoding FROM rpi_frames WHERE device = 11 ORDER BY id').all() as Array<{ encoding: string }>
  assert.deepEqual(stored.map(({ encoding }) => encoding), [...Array(200).fill('raw-pi'), ...Array(13).fill('raw-esp32'), ...Array(119).fill('raw-pi')])
  assert.ok(logs.some((line) => line.startsWith('keep-alive failed (ECONNREFUSED)')))
  assert.ok(logs.some((line) => /^server took frames again after \d+ failed attempts/.test(line)))
  const live = await getJson<Array<{ id: number }>>(`${url}/app/get/list_of_servers`)
  assert.deepEqual(live.map(({ id }) => id), [11], 'a keep-alive went out as soon as the server was back')
})

test('an outage longer than the queue: the oldest frames are dropped and counted, the newest arrive', async (t) => {
  const port = await freePort()
  const agent = agentFor(t, {
    transport: transport(`http://127.0.0.1:${port}`),
    batchSize: 25,
    flushMs: 0,
    queueCapacity: 100,
    backoff: { initialMs: 50, maxMs: 100, factor: 2, jitter: 0.5 }
  })
  agent.start()
  agent.push(piFrames[0])
  await sleep(200) // the agent has met the closed port
  for (const line of piFrames.slice(1)) agent.push(line)
  // 218 pushed out; the 219th is frame 0 if it was in flight just now (it is dropped when it comes back to a full queue)
  assert.ok(agent.stats.dropped >= 218, `${agent.stats.dropped} dropped`)

  const { app, url } = await listen(t, {}, port)
  const summary = await agent.finish(15_000)
  assert.deepEqual({ read: summary.read, sent: summary.sent, dropped: summary.dropped }, { read: 319, sent: 100, dropped: 219 })
  assert.equal(await framesReceived(url, 11), 100)
  // the newest 100 frames are the ones kept: compare a stored frame with the last line's magnitudes
  const last = app.storage.db.prepare('SELECT features, layout FROM rpi_frames WHERE device = 11 ORDER BY id DESC LIMIT 1')
    .get() as { features: Buffer, layout: number }
  const lastPairs = JSON.parse(piFrames[318]) as number[]
  const storedCh6 = storedFrame(last.layout, last.features).features[0]
  assert.ok(Math.abs(storedCh6 - Math.hypot(lastPairs[2], lastPairs[3])) < 1e-4)
})
