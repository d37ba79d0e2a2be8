import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { PROJECT_ROOT } from '../../core/project.js'
import { LOG_DIR } from '../../core/logger.js'
import { buildTestApp, tempDir } from '../helper.js'

/** How long the fixture may take to build the app and serve its requests (slow on a busy machine, and not what is tested). */
const CLOSED_WITHIN_MS = 60_000
/** How long the process may live after app.close() has resolved. */
const EXIT_AFTER_CLOSE_MS = 5_000

test('graceful stop leaves no timers: a process that builds, uses and closes the app exits by itself', async (t) => {
  const dataDir = tempDir(t)
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/graceful-stop.ts', dataDir], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = once(child, 'close').then(([code, signal]) => (code ?? signal) as number | string)
  t.after(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const closedAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`app not closed within ${CLOSED_WITHIN_MS} ms:\n${stdout}\n${stderr}`)), CLOSED_WITHIN_MS)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      if (/^closed$/m.test(stdout)) { clearTimeout(timer); resolve(Date.now()) }
    })
    exited.then((code) => { clearTimeout(timer); reject(new Error(`exited ${code} before closing the app:\n${stdout}\n${stderr}`)) })
  })

  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([
    exited,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the process did not exit by itself within ${EXIT_AFTER_CLOSE_MS} ms of app.close():\n${stderr}`)),
        EXIT_AFTER_CLOSE_MS
      )
    })
  ]).finally(() => clearTimeout(timer))
  assert.equal(code, 0, stderr)
  assert.ok(Date.now() - closedAt < EXIT_AFTER_CLOSE_MS)

  // the requests were answered before the close (what they answered is each area's business)
  assert.match(stdout, /^GET \/openapi\.json \d{3}$/m)
  assert.match(stdout, /^GET \/metrics \d{3}$/m)
  assert.match(stdout, /^POST \/server\/post\/keep_alive \d{3}$/m)
  assert.ok(existsSync(join(dataDir, LOG_DIR)) && readdirSync(join(dataDir, LOG_DIR)).length > 0, 'the log file was not on')
})

test('a stalled event loop sheds load with 503 + Retry-After, then recovers', async (t) => {
  const app = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '50' })
  const blockUntil = Date.now() + 1500
  while (Date.now() < blockUntil) {
    // a synchronous stall, as a runaway handler would cause
  }
  await delay(50) // under-pressure's overdue sampling timer runs first and sees the stall
  const shed = await app.inject({ method: 'GET', url: '/debug/get/time' })
  assert.equal(shed.statusCode, 503, shed.body)
  assert.equal(shed.headers['retry-after'], '1')
  assert.equal(shed.json().statusCode, 503)
  await delay(2200)
  const recovered = await app.inject({ method: 'GET', url: '/debug/get/time' })
  assert.equal(recovered.statusCode, 200, recovered.body)
})

test('a plugin that fails to load leaves nothing open: the process exits by itself', async (t) => {
  const dataDir = tempDir(t)
  // the fixture forces TF_BACKEND=node (not installed here) with the daily log file on,
  // whose roll timer would keep the process alive if buildApp did not close what it opened
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/failed-build.ts', dataDir], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  const code = await Promise.race([
    once(child, 'close').then(([exitCode]) => exitCode as number),
    delay(CLOSED_WITHIN_MS).then(() => 'still running')
  ])
  assert.match(stdout, /buildApp rejected: .*tfjs-node/)
  assert.equal(code, 0, `the process must exit by itself after the failed build:\n${stdout}`)
})
