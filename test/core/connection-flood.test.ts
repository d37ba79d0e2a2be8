import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { Agent, get as httpGet, type ClientRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { PROJECT_ROOT } from '../../core/project.js'
import { connectionLimits, openFilesLimit } from '../../core/connection-limits.js'
import { tempDir } from '../helper.js'

/** The open-files limit the server runs under: low, so that a few hundred sockets exhaust it. */
const FD_LIMIT = 256
/** Idle sockets the flood opens: more than the limit, as ~20,600 were against 20,000. */
const FLOOD = 400

/** A bin/serve.ts child under `ulimit -n FD_LIMIT`, its JSON log lines, its pid and its end. */
interface LimitedServer {
  pid: number
  url: URL
  logLines: () => Array<Record<string, unknown>>
  exited: () => boolean
  exit: Promise<number | string>
}

/**
 * Starts the server through a shell that lowers the open-files limit first
 * (soft and hard: Node raises the soft limit to the hard one as it starts, so
 * only both hold). `exec` keeps the pid: it is the server's.
 */
async function startLimitedServer (t: TestContext, env: Record<string, string>): Promise<LimitedServer> {
  const child = spawn('/bin/sh', ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" --import tsx bin/serve.ts`, process.execPath], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: tempDir(t),
      TF_BACKEND: 'cpu',
      LOG_TO_FILE: 'false',
      // no shedding on a busy test machine; the sampling timer runs all the same
      MAX_EVENT_LOOP_DELAY_MS: '0',
      // the idle sockets must outlive the test, not be timed out by the server
      REQUEST_TIMEOUT_S: '120',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  let ended = false
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exit = once(child, 'close').then(([code, signal]) => { ended = true; return (code ?? signal) as number | string })
  t.after(async () => {
    if (!ended) {
      child.kill('SIGKILL')
      await exit
    }
  })
  const logLines = (): Array<Record<string, unknown>> => stdout.split('\n').flatMap((line) => {
    try {
      return line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []
    } catch {
      return []
    }
  })
  for (let waited = 0; ; waited += 50) {
    const listening = logLines().find((line) => String(line.msg).startsWith('Server listening at '))
    if (listening) {
      return { pid: child.pid as number, url: new URL(String(listening.msg).slice('Server listening at '.length)), logLines, exited: () => ended, exit }
    }
    if (ended || waited > 90_000) throw new Error(`the server did not start:\n${stdout}\n${stderr}`)
    await delay(50)
  }
}

/** GET `path` through `agent` (or a fresh connection): the status, or the error code. */
function getStatus (url: URL, path: string, agent: Agent | false): Promise<{ status: number | string, reused: boolean }> {
  return new Promise((resolve) => {
    const request: ClientRequest = httpGet({ host: url.hostname, port: url.port, path, agent, timeout: 5000 }, (response) => {
      response.resume()
      response.on('end', () => resolve({ status: response.statusCode ?? 0, reused: request.reusedSocket }))
    })
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    request.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code ?? err.message, reused: request.reusedSocket }))
  })
}

/** Opens `count` idle TCP connections; `closed()` counts those the server has closed. */
function flood (url: URL, count: number): { closed: () => number, destroy: () => void } {
  let closed = 0
  const sockets: Socket[] = []
  for (let i = 0; i < count; i++) {
    const socket = connect(Number(url.port), url.hostname)
    socket.on('error', () => {}) // a dropped connection is reset: what is being tested
    socket.on('close', () => { closed++ })
    sockets.push(socket)
  }
  return { closed: () => closed, destroy: () => { for (const socket of sockets) socket.destroy() } }
}

const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/**
 * The flood against a running server: a keep-alive connection made before it
 * keeps getting answers, the process outlives it, and once the idle sockets
 * go a new connection is served. Returns the server's descriptors at the
 * height of the flood.
 */
async function survivesFlood (t: TestContext, server: LimitedServer): Promise<number> {
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => keepAlive.destroy())
  assert.equal((await getStatus(server.url, '/debug/get/exists', keepAlive)).status, 200)

  const idle = flood(server.url, FLOOD)
  t.after(() => idle.destroy())
  // past two sampling intervals: the old load shedder's timer threw EMFILE within one
  await delay(2500)
  const fdsAtHeight = openFds(server.pid)
  const live = await getStatus(server.url, '/debug/get/exists', keepAlive)
  assert.deepEqual(live, { status: 200, reused: true }, `liveness on the established keep-alive connection during the flood (${fdsAtHeight} descriptors open)`)
  assert.equal(server.exited(), false, 'the server is alive during the flood')

  idle.destroy()
  let fresh = await getStatus(server.url, '/debug/get/exists', false)
  for (let tries = 0; fresh.status !== 200 && tries < 50; tries++) {
    await delay(100)
    fresh = await getStatus(server.url, '/debug/get/exists', false)
  }
  assert.equal(fresh.status, 200, 'a new connection is served once the idle ones have gone')
  assert.equal(server.exited(), false, 'the server is alive after the flood')
  return fdsAtHeight
}

test('a connection flood is turned away at MAX_CONNECTIONS (by default half the open-files limit): liveness keeps answering and the process lives', { timeout: 180_000 }, async (t) => {
  const server = await startLimitedServer(t, {})
  const fdsAtHeight = await survivesFlood(t, server)
  t.diagnostic(`descriptors held at the height of a ${FLOOD}-socket flood: ${fdsAtHeight} of ${FD_LIMIT}`)
  assert.ok(fdsAtHeight < FD_LIMIT * 0.8, `the server held ${fdsAtHeight} of ${FD_LIMIT} descriptors at the height of the flood`)

  const caps = server.logLines().find((line) => line.maxConnections !== undefined)
  assert.ok(caps, 'the caps are logged at start')
  assert.equal(caps.openFilesLimit, FD_LIMIT, 'the open-files limit is read at start')
  assert.equal(caps.maxConnections, FD_LIMIT / 2)
  assert.equal(caps.maxEventStreams, FD_LIMIT / 4)
  const warning = server.logLines().find((line) => line.level === 40 && /connection limit reached/.test(String(line.msg)))
  assert.ok(warning, 'dropping connections is logged')
  assert.equal(warning.maxConnections, FD_LIMIT / 2)
})

test('even with every descriptor taken (MAX_CONNECTIONS above the limit) no timer throws EMFILE: the process lives and serves its connections', { timeout: 180_000 }, async (t) => {
  const server = await startLimitedServer(t, { MAX_CONNECTIONS: '1000' })
  const fdsAtHeight = await survivesFlood(t, server)
  assert.ok(fdsAtHeight >= FD_LIMIT - 2, `the flood took every descriptor (${fdsAtHeight} of ${FD_LIMIT}): this is the exhaustion the server must survive`)
  assert.ok(
    server.logLines().some((line) => line.level === 40 && /MAX_CONNECTIONS=1000 is more than half the open-files limit \(256\)/.test(String(line.msg))),
    'a cap above half the limit is warned about'
  )
})

test('the caps: half the open-files limit, at most 8192 connections; event streams half of those, at most 512; configured values win, with a warning when risky', () => {
  const limits = '/proc limits\nMax open files            1024                 524288               files     \n'
  assert.deepEqual(openFilesLimit(limits), { soft: 1024, hard: 524288 })
  assert.deepEqual(openFilesLimit('Max open files  unlimited  unlimited  files'), { soft: Infinity, hard: Infinity })
  assert.equal(openFilesLimit('nothing here'), undefined)
  // this process: Node raised the soft limit to the hard one as it started
  const own = openFilesLimit()
  assert.ok(own !== undefined && own.soft === own.hard, `soft ${own?.soft}, hard ${own?.hard}`)

  assert.deepEqual(connectionLimits({}, 256), { maxConnections: 128, maxEventStreams: 64, openFiles: 256, warnings: [] })
  assert.deepEqual(connectionLimits({}, 20_000), { maxConnections: 8192, maxEventStreams: 512, openFiles: 20_000, warnings: [] })
  assert.deepEqual(connectionLimits({}, undefined), { maxConnections: 8192, maxEventStreams: 512, openFiles: undefined, warnings: [] })
  const configured = connectionLimits({ MAX_CONNECTIONS: 300, MAX_EVENT_STREAMS: 300 }, 256)
  assert.equal(configured.maxConnections, 300)
  assert.equal(configured.maxEventStreams, 300)
  assert.equal(configured.warnings.length, 2)
  assert.match(configured.warnings[0] as string, /MAX_CONNECTIONS=300 is more than half the open-files limit/)
  assert.match(configured.warnings[1] as string, /MAX_EVENT_STREAMS=300 is not below the connection cap/)
})
