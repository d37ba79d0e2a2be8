import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../core/project.js'
import { readPid } from '../../core/pid-file.js'
import { isDoorsenseServer, isRunning } from '../../bin/lib/server-process.js'
import { redeployLockPath } from '../../core/redeploy-lock.js'
import { tempDir } from '../helper.js'
import { explain, get, runScript, serverEnv, ServerTracker, waitFor, type ScriptRun } from '../fixtures/ops.js'
import { freePort } from '../fixtures/live-server.js'

test('bin/watchdog keeps one server alive', { timeout: 600_000 }, async (t) => {
  const dataDir = tempDir(t, 'doorsense-watchdog-')
  const env = serverEnv(dataDir, await freePort())
  const pidFile = join(dataDir, 'doorsense.pid')
  const tracker = new ServerTracker(t, pidFile)
  const watchdog = async (...args: string[]): Promise<ScriptRun> => {
    const run = await runScript(PROJECT_ROOT, 'bin/watchdog.ts', args, env)
    tracker.noteOutput(run.output)
    return run
  }
  const healthy = async (): Promise<boolean> => (await get(env, '/debug/get/exists'))?.status === 200
  const failures = (): number => (JSON.parse(readFileSync(join(dataDir, 'watchdog-state.json'), 'utf8')) as { consecutiveFailures: number }).consecutiveFailures

  await t.test('with no server, one check starts it, detached', async () => {
    const run = await watchdog()
    assert.equal(run.exitCode, 0, explain(run))
    assert.match(run.output, /doorsense\.pid is missing; starting it/)
    const pid = tracker.current()
    assert.ok(pid !== undefined && isDoorsenseServer(pid), 'the pid file names a running doorsense server')
    assert.ok(await healthy())
  })

  await t.test('a healthy server is left alone', async () => {
    const pid = tracker.current() as number
    const pidFileWritten = statSync(pidFile).mtimeMs
    const run = await watchdog()
    assert.equal(run.exitCode, 0, explain(run))
    assert.match(run.output, new RegExp(`healthy: pid ${pid} answered`))
    assert.doesNotMatch(run.output, /start/)
    assert.equal(tracker.current(), pid)
    assert.equal(statSync(pidFile).mtimeMs, pidFileWritten)
    assert.equal(failures(), 0)
  })

  await t.test('kill -9: the next check starts it again and the pid file is fresh', async () => {
    const killed = tracker.current() as number
    process.kill(killed, 'SIGKILL')
    await waitFor('the killed server to be gone', () => !isRunning(killed))
    const killedAt = Date.now()
    assert.equal(readPid(pidFile), killed, 'kill -9 leaves the stale pid file behind')
    const run = await watchdog()
    assert.equal(run.exitCode, 0, explain(run))
    assert.match(run.output, new RegExp(`names pid ${killed}, which is not a running doorsense process; starting it`))
    const pid = tracker.current()
    assert.ok(pid !== undefined && pid !== killed && isDoorsenseServer(pid))
    assert.ok(statSync(pidFile).mtimeMs >= killedAt - 5, 'the pid file was written after the kill')
    assert.ok(await healthy())
  })

  await t.test('a hung server is restarted after N failed checks in a row', async () => {
    const hung = tracker.current() as number
    process.kill(hung, 'SIGSTOP')
    const first = await watchdog('--failures', '2', '--timeout', '1')
    assert.equal(first.exitCode, 2, explain(first))
    assert.match(first.output, /unhealthy \(1 of 2 checks in a row\)/)
    assert.equal(failures(), 1)
    assert.ok(isRunning(hung), 'one failed check does not restart it')
    const second = await watchdog('--failures', '2', '--timeout', '1', '--stop-timeout', '5')
    assert.equal(second.exitCode, 0, explain(second))
    assert.match(second.output, /unhealthy 2 checks in a row/)
    assert.ok(!isRunning(hung), 'the hung server was stopped')
    const pid = tracker.current()
    assert.ok(pid !== undefined && pid !== hung && isDoorsenseServer(pid))
    assert.ok(await healthy())
    assert.equal(failures(), 0)
  })

  await t.test('while a redeploy holds the lock, the server is left to it', async () => {
    const pid = tracker.current() as number
    process.kill(pid, 'SIGKILL')
    await waitFor('the killed server to be gone', () => !isRunning(pid))
    // this test process stands in for a running redeploy: the lock only needs a live pid
    writeFileSync(redeployLockPath(dataDir), `${process.pid}\n`)
    const run = await watchdog()
    assert.equal(run.exitCode, 0, explain(run))
    assert.match(run.output, new RegExp(`redeploy pid ${process.pid} is running: leaving the server to it`))
    assert.equal(readPid(pidFile), pid, 'nothing was started')
  })
})

/**
 * A stand-in server: an HTTP server on `port` whose liveness route answers
 * 503 + Retry-After (load shedding) to the first `shedding` requests, then
 * 200. Its command line names bin/serve.ts, which is how the watchdog tells
 * a doorsense server from any process, so it is taken for one. It prints each
 * liveness request it answers.
 */
function sheddingServer (t: import('node:test').TestContext, port: number, shedding: number): { pid: number, asked: () => number, listening: Promise<void> } {
  const script = `
    let asked = 0
    require('node:http').createServer((request, response) => {
      if (request.url !== '/debug/get/exists') { response.writeHead(404).end(); return }
      asked++
      console.log('asked ' + asked)
      if (asked <= ${shedding}) response.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' })
        .end('{"statusCode":503,"error":"Service Unavailable","message":"overloaded","code":"FST_UNDER_PRESSURE"}')
      else response.writeHead(200, { 'content-type': 'text/plain' }).end('Success')
    }).listen(${port}, '127.0.0.1', () => console.log('listening'))`
  const child = spawn(process.execPath, ['-e', script, `${PROJECT_ROOT}/bin/serve.ts`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill('SIGKILL') })
  let output = ''
  const listening = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (output.includes('listening')) resolve()
    })
  })
  return { pid: child.pid as number, asked: () => (output.match(/^asked \d+$/gm) ?? []).length, listening }
}

test('bin/watchdog asks again after a 503 (load shedding) before it counts a failure', { timeout: 120_000 }, async (t) => {
  const dataDir = tempDir(t, 'doorsense-watchdog-')
  const port = await freePort()
  const env = serverEnv(dataDir, port)
  const stateFile = join(dataDir, 'watchdog-state.json')
  const failures = (): number => (JSON.parse(readFileSync(stateFile, 'utf8')) as { consecutiveFailures: number }).consecutiveFailures

  await t.test('two 503s, then 200: healthy, nothing counted, nothing restarted', async () => {
    const server = sheddingServer(t, port, 2)
    await server.listening
    assert.ok(isDoorsenseServer(server.pid), 'the stand-in passes for a server')
    writeFileSync(join(dataDir, 'doorsense.pid'), `${server.pid}\n`)
    const run = await runScript(PROJECT_ROOT, 'bin/watchdog.ts', [], env)
    assert.equal(run.exitCode, 0, explain(run))
    assert.equal((run.output.match(/answered 503 \(shedding load\): asking again/g) ?? []).length, 2, run.output)
    assert.match(run.output, new RegExp(`healthy: pid ${server.pid} answered`))
    assert.equal(server.asked(), 3)
    assert.equal(failures(), 0)
    assert.equal(readPid(join(dataDir, 'doorsense.pid')), server.pid, 'nothing was started')
    process.kill(server.pid, 'SIGKILL')
    await waitFor('the stand-in to be gone', () => !isRunning(server.pid))
  })

  await t.test('503 on every ask: one failure counted, after the retries', async () => {
    const server = sheddingServer(t, port, 1000)
    await server.listening
    writeFileSync(join(dataDir, 'doorsense.pid'), `${server.pid}\n`)
    const run = await runScript(PROJECT_ROOT, 'bin/watchdog.ts', ['--failures', '3'], env)
    assert.equal(run.exitCode, 2, explain(run))
    assert.match(run.output, /unhealthy \(1 of 3 checks in a row\): .*answered HTTP 503/)
    assert.equal(server.asked(), 4, 'the first ask and three more')
    assert.equal(failures(), 1)
  })
})
