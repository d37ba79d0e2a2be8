import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IncomingMessage, request as httpRequest } from 'node:http'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { PID_FILE, readPid } from '../../core/pid-file.js'
import { exitWithin, listeningUrl, spawnServe, type ServeProcess } from '../fixtures/serve-process.js'
import { tempDir } from '../helper.js'

/** What the issue allows for a graceful stop. */
const STOP_WITHIN_MS = 10_000

/** The pid of a process that has already exited. */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  assert.ok(child.pid)
  return child.pid
}

/**
 * Sends `signals` while a POST to /debug/post/echo is half-sent, then finishes
 * the body: the answer must still be the full echo, after the signal.
 */
async function stopDuringRequest (server: ServeProcess, base: string, signals: NodeJS.Signals[]): Promise<void> {
  const payload = JSON.stringify({ note: 'in flight across a stop signal', pad: 'x'.repeat(2000) })
  const request = httpRequest(`${base}/debug/post/echo?inflight=1`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
  })
  const answered = once(request, 'response').then(async ([response]) => {
    assert.ok(response instanceof IncomingMessage)
    let body = ''
    for await (const chunk of response.setEncoding('utf8')) body += chunk as string
    return { statusCode: response.statusCode, body, at: Date.now() }
  })
  request.write(payload.slice(0, 100))
  // the server has the request (headers read, body not) once it logs it
  await server.waitForLog((line) => line.msg === 'incoming request' && String((line.req as { url?: string })?.url).includes('inflight=1'))

  const signalledAt = Date.now()
  for (const signal of signals) {
    server.child.kill(signal)
    await sleep(30)
  }
  await server.waitForLog((line) => line.msg === 'stopping: finishing in-flight requests')
  await sleep(300)
  assert.equal(server.child.exitCode, null, 'the server exited with a request in flight')
  request.end(payload.slice(100))

  const answer = await answered
  assert.equal(answer.statusCode, 200, answer.body)
  assert.deepEqual(JSON.parse(answer.body), JSON.parse(payload))
  assert.ok(answer.at > signalledAt)
  const code = await exitWithin(server, STOP_WITHIN_MS - (Date.now() - signalledAt))
  assert.equal(code, 0, `exit ${code}; stderr:\n${server.stderr()}`)
}

test('serve: answers, owns the pid file, refuses a second start, and on SIGTERM finishes in-flight work and exits 0', async (t) => {
  const dataDir = tempDir(t)
  // the request lines (at debug unless LOG_REQUESTS=info) tell when the in-flight request has arrived
  const server = spawnServe(t, { DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_REQUESTS: 'info', LOG_TO_FILE: 'true' })
  const base = await listeningUrl(server)

  const openapi = await fetch(`${base}/openapi.json`)
  assert.equal(openapi.status, 200)
  assert.match(((await openapi.json()) as { openapi: string }).openapi, /^3\./)
  const metrics = await fetch(`${base}/metrics`)
  assert.equal(metrics.status, 200)
  assert.match(await metrics.text(), /http_request_duration_seconds_count\{[^}]*route="\/openapi.json"/)

  const pidFile = `${dataDir}/${PID_FILE}`
  assert.equal(readPid(pidFile), server.child.pid)

  // a second server on the same DATA_DIR is refused, and leaves the first one's pid file alone
  const second = spawnServe(t, { DATA_DIR: dataDir, LOG_LEVEL: 'info' })
  const secondCode = await exitWithin(second, 20_000)
  assert.equal(secondCode, 2, 'exit code 2 means another server owns the pid file')
  assert.match(second.stderr(), new RegExp(`refusing to start: another doorsense server \\(pid ${server.child.pid}\\) owns ${pidFile}`))
  assert.doesNotMatch(second.stdout(), /Server listening/)
  assert.equal(readPid(pidFile), server.child.pid)
  assert.equal((await fetch(`${base}/openapi.json`)).status, 200, 'the first server stopped answering')

  // an open event stream (a dashboard watching training) must not hold the stop up
  const stream = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest(`${base}/training/get/progress/stream`, { agent: false }, resolve).on('error', reject).end()
  })
  assert.equal(stream.statusCode, 200)
  stream.resume()
  const streamEnded = once(stream, 'close')

  await stopDuringRequest(server, base, ['SIGTERM'])
  await streamEnded
  assert.equal(existsSync(pidFile), false, 'the pid file was left behind')
  const signalLine = server.logLines().find((line) => line.msg === 'stopping: finishing in-flight requests')
  assert.equal(signalLine?.signal, 'SIGTERM')
})

test('serve: replaces a stale pid file; SIGINT, even delivered twice as under npm start, stops gracefully with exit 0', async (t) => {
  const dataDir = tempDir(t)
  const pidFile = `${dataDir}/${PID_FILE}`
  const stale = await deadPid()
  writeFileSync(pidFile, `${stale}\n`)

  const server = spawnServe(t, { DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_REQUESTS: 'info', LOG_TO_FILE: 'false' })
  const base = await listeningUrl(server)
  assert.equal(readFileSync(pidFile, 'utf8'), `${server.child.pid}\n`)
  const replaced = server.logLines().find((line) => line.msg === 'replaced a stale pid file')
  assert.equal(replaced?.stalePid, stale)

  // Ctrl-C in a terminal reaches node from the terminal and again from npm
  await stopDuringRequest(server, base, ['SIGINT', 'SIGINT'])
  assert.equal(existsSync(pidFile), false, 'the pid file was left behind')
})

test('serve: a port already in use is a clear start-up failure that releases the pid file', async (t) => {
  const occupier = createServer()
  occupier.listen(0, '127.0.0.1')
  await once(occupier, 'listening')
  t.after(() => { occupier.close() })
  const { port } = occupier.address() as AddressInfo
  const dataDir = tempDir(t)
  const server = spawnServe(t, { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info', LOG_TO_FILE: 'true' })
  assert.equal(await exitWithin(server, 60_000), 1)
  // one line, naming the setting and the fix
  assert.equal(server.stderr(), `doorsense: cannot start: port ${port} on 127.0.0.1 is already in use (PORT=${port}); ` +
    `stop what listens there (ss -ltnp 'sport = :${port}' shows it) or set PORT to a free port\n`)
  assert.equal(existsSync(`${dataDir}/${PID_FILE}`), false)
})
