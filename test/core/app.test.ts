import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../core/app.js'
import { LOG_DIR } from '../../core/logger.js'
import { tempDir } from '../helper.js'

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
      timer = setTimeout(() => reject(new Error(`the process did not exit by itself within ${EXIT_AFTER_CLOSE_MS} ms of app.close():\n${stderr}`)), EXIT_AFTER_CLOSE_MS)
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
