import { test } from 'node:test'
import assert from 'node:assert/strict'
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
