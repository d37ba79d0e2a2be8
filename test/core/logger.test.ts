import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, LOG_DIR } from '../../core/logger.js'
import { buildTestApp, tempDir } from '../helper.js'

/** Every JSON line of every file in DATA_DIR/logs. */
function fileLines (dataDir: string): Array<Record<string, unknown>> {
  const dir = join(dataDir, LOG_DIR)
  return readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>))
}

/** Active timers of this process (what keeps it from exiting). */
function timerCount (): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length
}

/** The same day in local time, the way pino-roll names the file. */
function today (): string {
  const now = new Date()
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`
}

test('with LOG_TO_FILE a daily file appears in DATA_DIR/logs and gets the request lines', async (t) => {
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_TO_FILE: 'true' }, { dataDir })
  const files = readdirSync(join(dataDir, LOG_DIR))
  assert.equal(files.length, 1)
  assert.match(files[0], new RegExp(`^doorsense\\.${today()}\\.\\d+\\.log$`))

  await app.inject({ method: 'GET', url: '/debug/get/time', headers: { 'x-test': 'logger-1' } })
  await app.close()
  const lines = fileLines(dataDir)
  const incoming = lines.filter((line) => line.msg === 'incoming request')
  assert.ok(incoming.some((line) => (line.req as { url?: string })?.url === '/debug/get/time'), 'no incoming request line')
  assert.ok(lines.some((line) => line.msg === 'request completed'), 'no request completed line')
  assert.ok(lines.every((line) => typeof line.time === 'number' && typeof line.level === 'number'), 'not pino JSON lines')
})

test('LOG_TO_FILE=false writes no file', async (t) => {
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_TO_FILE: 'false' }, { dataDir })
  await app.inject({ method: 'GET', url: '/debug/get/time' })
  await app.close()
  assert.equal(existsSync(join(dataDir, LOG_DIR)), false)
})

test('with requestLogging.enabled=false no request lines are written, and turning it on again resumes them', async (t) => {
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_TO_FILE: 'true' }, { dataDir })
  app.requestLogging.enabled = false
  await app.inject({ method: 'GET', url: '/debug/get/time?quiet=1' })
  await app.inject({ method: 'GET', url: '/no/such/route?quiet=2' })
  await app.inject({ method: 'POST', url: '/debug/post/echo', headers: { 'content-type': 'application/json' }, payload: '{bad json ?quiet=3' })
  app.requestLogging.enabled = true
  await app.inject({ method: 'GET', url: '/debug/get/time?loud=1' })
  await app.close()

  const requestLines = fileLines(dataDir).filter((line) => line.reqId !== undefined)
  assert.deepEqual(requestLines.filter((line) => JSON.stringify(line).includes('quiet')), [], 'a request line was written while logging was off')
  assert.ok(requestLines.some((line) => (line.req as { url?: string })?.url === '/debug/get/time?loud=1'), 'request logging did not resume')
  // the rejected-request lines are request lines too
  const rejected = requestLines.filter((line) => line.msg === 'request rejected')
  assert.equal(rejected.length, 0)
})

test('app.close() closes the log file and leaves no timer behind', async (t) => {
  const dataDir = tempDir(t)
  const before = timerCount()
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_TO_FILE: 'true' }, { dataDir })
  await app.inject({ method: 'GET', url: '/debug/get/time' })
  assert.ok(timerCount() > before, 'expected the running app to hold timers (pino-roll schedules its daily roll)')
  await app.close()
  assert.equal(timerCount(), before, `timers left after close: ${process.getActiveResourcesInfo().join(', ')}`)
  // closed: a late line does not reach the file (nor throw)
  const size = fileLines(dataDir).length
  app.log.info('a line after close')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(fileLines(dataDir).length, size)
})

test('createLogger: a line logged after close is dropped from the file instead of throwing', async (t) => {
  const dataDir = tempDir(t)
  const { logger, close } = await createLogger({ level: 'info', dataDir, toFile: true })
  // a child so the test can tell its lines apart from anything else on stdout
  logger.child({ test: 'logger' }).info('before close')
  await close()
  await close() // twice is harmless
  assert.doesNotThrow(() => logger.info('after close'))
  const messages = fileLines(dataDir).map((line) => line.msg)
  assert.deepEqual(messages, ['before close'])
})

test('createLogger redacts the Authorization header', async (t) => {
  const dataDir = tempDir(t)
  const { logger, close } = await createLogger({ level: 'info', dataDir, toFile: true })
  logger.info({ req: { headers: { authorization: 'Bearer very-secret-token' } } }, 'with a header')
  await close()
  const text = readdirSync(join(dataDir, LOG_DIR)).map((name) => readFileSync(join(dataDir, LOG_DIR, name), 'utf8')).join('')
  assert.match(text, /with a header/)
  assert.ok(!text.includes('very-secret-token'))
  assert.match(text, /\[redacted\]/)
})
