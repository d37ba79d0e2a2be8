/**
 * REQUEST_TIMEOUT_S and KEEP_ALIVE_TIMEOUT_S over real sockets on 127.0.0.1:
 * a client trickling its body is cut off within about the request timeout
 * while other clients are answered, and an idle keep-alive socket outlives
 * the request timeout and serves a second request.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { connectionsCheckingMs, type App } from '../../core/app.js'
import { loadConfig } from '../../core/config.js'
import { listen } from '../fixtures/live-server.js'

const REQUEST_TIMEOUT_S = 1
const KEEP_ALIVE_TIMEOUT_S = 5

/** Sockets and timers a failed test must not leave holding app.close() up (the app's own after hook runs first). */
const leftovers: Array<() => void> = []
function cleanUp (): void {
  for (const clean of leftovers.splice(0)) clean()
}

/** A raw client socket on `port`; `text()` is everything it received. */
async function rawSocket (port: number): Promise<{ socket: Socket, text: () => string, closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1')
  leftovers.push(() => socket.destroy())
  await once(socket, 'connect')
  let text = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  socket.on('error', () => {}) // a reset by the server shows up as the close below
  const closed = once(socket, 'close').then(() => Date.now())
  return { socket, text: () => text, closed }
}

/** Resolves once `read()` holds `count` whole HTTP responses to GET /debug/get/exists. */
async function responses (read: () => string, count: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((read().match(/HTTP\/1\.1 200 OK[\s\S]*?\r\n\r\nSuccess/g) ?? []).length < count) {
    assert.ok(Date.now() < deadline, `expected ${count} answers, got:\n${read()}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const GET_EXISTS = 'GET /debug/get/exists HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n'

test('the defaults: a whole request within 30 s, idle keep-alive sockets for 72 s; both validated', () => {
  const config = loadConfig({})
  assert.equal(config.REQUEST_TIMEOUT_S, 30)
  assert.equal(config.KEEP_ALIVE_TIMEOUT_S, 72)
  assert.throws(() => loadConfig({ REQUEST_TIMEOUT_S: '0' }), /REQUEST_TIMEOUT_S must be > 0 \(got "0"\)/)
  assert.throws(() => loadConfig({ KEEP_ALIVE_TIMEOUT_S: 'soon' }), /KEEP_ALIVE_TIMEOUT_S must be number/)
  assert.equal(connectionsCheckingMs(30_000), 1000)
  assert.equal(connectionsCheckingMs(1000), 250)
  assert.equal(connectionsCheckingMs(10), 50)
})

test('a body trickled one byte every 200 ms is cut off after REQUEST_TIMEOUT_S, other clients are answered meanwhile, an idle keep-alive socket is reused', { timeout: 30_000 }, async (t) => {
  const { app } = await listen(t, { REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S), KEEP_ALIVE_TIMEOUT_S: String(KEEP_ALIVE_TIMEOUT_S) })
  try {
    await trickleAndIdle(t, app)
  } finally {
    cleanUp()
  }
})

async function trickleAndIdle (t: import('node:test').TestContext, app: App): Promise<void> {
  const port = (app.server.address() as { port: number }).port
  assert.equal(app.server.requestTimeout, REQUEST_TIMEOUT_S * 1000)
  assert.equal(app.server.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_S * 1000)

  // the keep-alive client: one request now, the second after an idle pause longer than the request timeout
  const idle = await rawSocket(port)
  idle.socket.write(GET_EXISTS)
  await responses(idle.text, 1)

  // the slow client: headers promise 1000 bytes, the body arrives one byte every 200 ms
  const slow = await rawSocket(port)
  const started = Date.now()
  slow.socket.write('POST /debug/post/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n')
  let trickled = 0
  const trickle = setInterval(() => {
    if (slow.socket.destroyed) return
    slow.socket.write(trickled === 0 ? '[' : '1')
    trickled++
  }, 200)
  leftovers.push(() => clearInterval(trickle))

  // a normal client on its own socket is answered while the slow one trickles
  const normal = await rawSocket(port)
  const normalStarted = Date.now()
  normal.socket.write(GET_EXISTS)
  await responses(normal.text, 1)
  const normalMs = Date.now() - normalStarted
  assert.ok(normalMs < 500, `the normal client waited ${normalMs} ms`)

  const cutAt = await slow.closed
  clearInterval(trickle)
  const cutAfterMs = cutAt - started
  // the timeout, plus at most one check interval (250 ms here) and some slack for a busy machine
  assert.ok(cutAfterMs >= REQUEST_TIMEOUT_S * 1000 - 50, `cut off too early, after ${cutAfterMs} ms`)
  assert.ok(cutAfterMs < REQUEST_TIMEOUT_S * 1000 + 1000, `cut off only after ${cutAfterMs} ms`)
  assert.match(slow.text(), /^HTTP\/1\.1 408 Request Timeout/)
  assert.ok(trickled < 1000, 'the body never completed')
  t.diagnostic(`trickling client cut off after ${cutAfterMs} ms (${trickled} bytes), a normal client answered in ${normalMs} ms`)

  // the idle keep-alive socket has now been idle > REQUEST_TIMEOUT_S; it is still open and serves a second request
  await new Promise((resolve) => setTimeout(resolve, REQUEST_TIMEOUT_S * 1000 + 500))
  assert.equal(idle.socket.destroyed, false, 'the idle keep-alive socket was closed')
  idle.socket.write(GET_EXISTS)
  await responses(idle.text, 2)
  assert.equal(idle.socket.destroyed, false)
}

test('an idle keep-alive socket is closed once KEEP_ALIVE_TIMEOUT_S has passed', { timeout: 30_000 }, async (t) => {
  const { app } = await listen(t, { REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S), KEEP_ALIVE_TIMEOUT_S: '1.5' })
  const port = (app.server.address() as { port: number }).port
  try {
    const idle = await rawSocket(port)
    idle.socket.write(GET_EXISTS)
    await responses(idle.text, 1)
    const answeredAt = Date.now()
    const closedAfterMs = await idle.closed - answeredAt
    assert.ok(closedAfterMs >= 1400 && closedAfterMs < 3000, `closed after ${closedAfterMs} ms`)
  } finally {
    cleanUp()
  }
})
