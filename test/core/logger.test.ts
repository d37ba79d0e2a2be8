import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, LOG_DIR, prettyOnTerminal, pruneLogFiles } from '../../core/logger.js'
import { pidFilePath, readPid } from '../../core/pid-file.js'
import { PROJECT_ROOT } from '../../core/project.js'
import { buildTestApp, tempDir } from '../helper.js'

/** Every JSON line of every file in DATA_DIR/logs. */
function fileLines (dataDir: string): Array<Record<string, unknown>> {
  const dir = join(dataDir, LOG_DIR)
  return readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>))
}

/** A local date `daysAgo` days before `from`, as pino-roll names its files (yyyy-MM-dd). */
function dayBefore (from: Date, daysAgo: number): string {
  const day = new Date(from.getFullYear(), from.getMonth(), from.getDate() - daysAgo)
  return `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`
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
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_REQUESTS: 'info', LOG_TO_FILE: 'true' }, { dataDir })
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

test('request lines are at debug by default: an info log gets none, a debug log gets them at debug, LOG_REQUESTS=info puts them back at info', async (t) => {
  const levels = async (env: Record<string, string>) => {
    const dataDir = tempDir(t)
    const app = await buildTestApp(t, { LOG_TO_FILE: 'true', ...env }, { dataDir })
    for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/debug/get/time' })
    // a refusal still says why at info, in one line
    await app.inject({ method: 'GET', url: '/doors/123' })
    await app.close()
    const lines = fileLines(dataDir)
    const requestLines = lines.filter((line) => line.msg === 'incoming request' || line.msg === 'request completed')
    const rejected = lines.filter((line) => line.msg === 'request rejected')
    return {
      requestLevels: [...new Set(requestLines.map((line) => line.level))],
      requestLines: requestLines.length,
      rejected: rejected.map((line) => [line.level, line.statusCode])
    }
  }
  assert.deepEqual(await levels({ LOG_LEVEL: 'info' }), { requestLevels: [], requestLines: 0, rejected: [[30, 404]] })
  assert.deepEqual(await levels({ LOG_LEVEL: 'debug' }), { requestLevels: [20], requestLines: 8, rejected: [[30, 404]] })
  assert.deepEqual(await levels({ LOG_LEVEL: 'info', LOG_REQUESTS: 'info' }), { requestLevels: [30], requestLines: 8, rejected: [[30, 404]] })
})

test('pruneLogFiles deletes the daily files older than the retention, by calendar day, and nothing else', (t) => {
  const dir = tempDir(t)
  const now = new Date(2025, 2, 31, 0, 30) // 31 March, just after midnight (and a week after a daylight-saving change in Europe)
  const others = ['redeploy.log', 'server-output.log', 'doorsense.notes.log', 'doorsense.2025-01-01.log']
  const daily = [0, 1, 29, 30, 31, 45, 400].flatMap((daysAgo) => [`doorsense.${dayBefore(now, daysAgo)}.1.log`, `doorsense.${dayBefore(now, daysAgo)}.2.log`])
  for (const name of [...others, ...daily]) writeFileSync(join(dir, name), 'x\n')
  const deleted = pruneLogFiles(dir, 30, now)
  assert.deepEqual(deleted.sort(), [31, 45, 400]
    .flatMap((daysAgo) => [`doorsense.${dayBefore(now, daysAgo)}.1.log`, `doorsense.${dayBefore(now, daysAgo)}.2.log`])
    .sort())
  assert.deepEqual(readdirSync(dir).sort(), [
    ...others,
    ...[0, 1, 29, 30].flatMap((daysAgo) => [`doorsense.${dayBefore(now, daysAgo)}.1.log`, `doorsense.${dayBefore(now, daysAgo)}.2.log`])
  ].sort())
  // 0: today's only
  assert.deepEqual(pruneLogFiles(dir, 0, now).length, 6)
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes(dayBefore(now, 0))).length, 2)
  // a folder that is not there: nothing to do
  assert.deepEqual(pruneLogFiles(join(dir, 'missing'), 0, now), [])
})

test('LOG_RETENTION_DAYS: a (re)start deletes the daily log files older than it, whoever wrote them', async (t) => {
  const dataDir = tempDir(t)
  const dir = join(dataDir, LOG_DIR)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const now = new Date()
  // files an earlier server left: a server restarted every day never rolled past any limit of its own
  for (const daysAgo of [1, 2, 3, 40]) writeFileSync(join(dir, `doorsense.${dayBefore(now, daysAgo)}.1.log`), '{}\n', { mode: 0o600 })
  writeFileSync(join(dir, 'redeploy.log'), 'kept\n', { mode: 0o600 })
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_TO_FILE: 'true', LOG_RETENTION_DAYS: '2' }, { dataDir })
  await app.close()
  assert.deepEqual(readdirSync(dir).sort(), [
    `doorsense.${dayBefore(now, 2)}.1.log`,
    `doorsense.${dayBefore(now, 1)}.1.log`,
    `doorsense.${today()}.1.log`,
    'redeploy.log'
  ].sort())
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
  const app = await buildTestApp(t, { LOG_LEVEL: 'info', LOG_REQUESTS: 'info', LOG_TO_FILE: 'true' }, { dataDir })
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

test('the log folder DATA_DIR/logs is created 0700 and its file 0600; an existing 0644 file of the day is tightened', async (t) => {
  const dataDir = join(tempDir(t), 'data')
  const mode = (path: string) => statSync(path).mode & 0o777
  const first = await createLogger({ level: 'info', dataDir, toFile: true, pretty: false })
  first.logger.info('first')
  await first.close()
  const dir = join(dataDir, LOG_DIR)
  const [name] = readdirSync(dir)
  // the umask (0022 here) would have left 0755 and 0644
  assert.equal(mode(dataDir), 0o700)
  assert.equal(mode(dir), 0o700)
  assert.equal(mode(join(dir, name)), 0o600)

  // a file of the day an older build left readable by everyone is reused, and tightened
  chmodSync(join(dir, name), 0o644)
  const second = await createLogger({ level: 'info', dataDir, toFile: true, pretty: false })
  assert.equal(mode(join(dir, name)), 0o600)
  second.logger.info('second')
  await second.close()
  assert.deepEqual(readdirSync(dir), [name])
  assert.deepEqual(fileLines(dataDir).map((line) => line.msg), ['first', 'second'])
})

test('pretty stdout only on a terminal', () => {
  assert.equal(prettyOnTerminal({ isTTY: true }), true)
  assert.equal(prettyOnTerminal({ isTTY: false }), false)
  assert.equal(prettyOnTerminal({}), false)
  // the test runner pipes our stdout
  assert.equal(prettyOnTerminal(), false)
})

test('bin/serve.ts on a terminal prints readable lines; the log file stays JSON', { skip: !existsSync('/usr/bin/script') && 'needs script(1) from util-linux' }, async (t) => {
  const dataDir = tempDir(t)
  // script(1) gives the server a pseudo-terminal as stdout; -e passes its exit code on
  const child = spawn('script', ['-qec', `${process.execPath} --import tsx bin/serve.ts`, '/dev/null'], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TERM: 'xterm',
      HOST: '127.0.0.1',
      PORT: '0',
      TF_BACKEND: 'cpu',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      LOG_TO_FILE: 'true'
    },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true // its own process group: the server under script(1) is stopped with it
  })
  const exited = once(child, 'exit')
  t.after(() => { if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL') })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const deadline = Date.now() + 30_000
  while (!/Server listening at http:\/\/127\.0\.0\.1:\d+/.test(output)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `no listening line within 30 s:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // strip the colours: what is left is pino-pretty's "[12:34:56.789] INFO: Server listening at …", not a JSON object
  // eslint-disable-next-line no-control-regex
  const plain = output.replace(/\u001b\[[0-9;]*m/g, '')
  const line = plain.split(/\r?\n/).find((text) => text.includes('Server listening at'))!
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO(?: \(\d+\))?: Server listening at http:\/\/127\.0\.0\.1:\d+/)
  assert.notEqual(output, plain, 'colours on a terminal')
  assert.ok(!plain.split(/\r?\n/).some((text) => text.trimStart().startsWith('{"level"')), `a JSON line on the terminal:\n${plain}`)

  // SIGTERM to the server itself (its pid file names it): stopping script(1)
  // first would hang up the terminal under a server still writing its file
  process.kill(readPid(pidFilePath(dataDir))!, 'SIGTERM')
  await exited
  // the file got the same lines as JSON
  const listening = fileLines(dataDir).find((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('Server listening at'))
  assert.ok(listening, 'no listening line in the log file')
  assert.equal(listening.level, 30)
})
