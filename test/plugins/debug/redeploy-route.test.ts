import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { isRunning } from '../../../bin/lib/server-process.js'
import { redeployLockPath } from '../../../core/redeploy-lock.js'
import { createRedeployLauncher, REDEPLOY_LOG } from '../../../plugins/debug/redeploy.js'
import { ADMIN, buildTestApp, tempDir } from '../../helper.js'

async function waitUntilGone (pid: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (isRunning(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still running after ${timeoutMs} ms`)
    await sleep(50)
  }
}

function stopOnExit (t: { after: (fn: () => void | Promise<void>) => void }, pid: number): void {
  t.after(async () => {
    if (!isRunning(pid)) return
    process.kill(pid, 'SIGKILL')
    await waitUntilGone(pid, 5000)
  })
}

test('POST /debug/post/redeploy needs the admin token', async (t) => {
  const app = await buildTestApp(t)
  const anonymous = await app.inject({ method: 'POST', url: '/debug/post/redeploy' })
  assert.equal(anonymous.statusCode, 401)
  assert.match(anonymous.json().message, /missing Authorization header/)
  const wrong = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: { authorization: 'Bearer not-the-admin-token' } })
  assert.equal(wrong.statusCode, 401)
  assert.ok(!existsSync(redeployLockPath(app.config.DATA_DIR)), 'nothing was started')
})

test('POST /debug/post/redeploy starts bin/redeploy detached (202), and answers 409 while it holds the lock', { timeout: 90_000 }, async (t) => {
  // the launched redeploy acts on this very checkout: as a dry run it only prints its plan
  const previous = process.env.REDEPLOY_DRY_RUN
  process.env.REDEPLOY_DRY_RUN = '1'
  t.after(() => {
    if (previous === undefined) delete process.env.REDEPLOY_DRY_RUN
    else process.env.REDEPLOY_DRY_RUN = previous
  })
  const app = await buildTestApp(t)
  const dataDir = app.config.DATA_DIR

  const accepted = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(accepted.statusCode, 202, accepted.body)
  const answer = accepted.json() as { accepted: boolean, configured: boolean, pid: number }
  assert.equal(answer.accepted, true)
  assert.equal(answer.configured, true)
  assert.ok(Number.isInteger(answer.pid))
  stopOnExit(t, answer.pid)
  assert.equal(readFileSync(redeployLockPath(dataDir), 'utf8').trim(), String(answer.pid), 'the lock names the launched redeploy at once')

  const refused = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(refused.statusCode, 409, refused.body)
  assert.match(refused.json().message, /already running/)

  await waitUntilGone(answer.pid)
  const log = readFileSync(join(dataDir, 'logs', REDEPLOY_LOG), 'utf8')
  assert.match(log, /redeploy: lock: ok/, 'the detached redeploy took over the lock')
  assert.match(log, /dry run: the read-only checks run/)
  assert.ok(!existsSync(redeployLockPath(dataDir)), 'it released the lock when it finished')
})

test('POST /debug/post/redeploy answers 409 while a redeploy started elsewhere (cron, an admin) holds the lock', async (t) => {
  const app = await buildTestApp(t)
  // a live process holding the lock stands in for that redeploy
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  assert.ok(holder.pid !== undefined)
  stopOnExit(t, holder.pid)
  writeFileSync(redeployLockPath(app.config.DATA_DIR), `${holder.pid}\n`)
  const refused = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(refused.statusCode, 409, refused.body)
  assert.equal(refused.json().code, 'DS_CONFLICT')
})

test('the launcher is not configured where the project is no git checkout (a Docker image)', (t) => {
  const launcher = createRedeployLauncher({ projectRoot: tempDir(t), dataDir: tempDir(t) })
  assert.equal(launcher.isRunning(), false)
  assert.deepEqual(launcher.start(), { configured: false })
})
