import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import pino from 'pino'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { ADMIN_TOKEN_FILE, authPlugin, isLoopbackHost, resolveAdminToken, tokensEqual } from '../../core/auth.js'
import { installErrorHandlers } from '../../core/errors.js'
import { LOG_DIR } from '../../core/logger.js'
import { exitWithin, listeningUrl, spawnServe } from '../fixtures/serve-process.js'
import { buildTestApp, tempDir } from '../helper.js'

const ADMIN = 'admin-token-for-auth-tests-0001'
const DEVICE = 'device-token-0002'

/** A bare Fastify with the auth plugin and one admin and one device route. */
async function guardedApp (
  t: import('node:test').TestContext,
  options: { adminToken?: string, deviceToken?: string } = { adminToken: ADMIN }
): Promise<FastifyInstance> {
  const app = Fastify()
  t.after(() => app.close())
  installErrorHandlers(app)
  await app.register(authPlugin, { dataDir: tempDir(t), ...options })
  app.get('/admin-only', { onRequest: app.requireAdmin }, async () => ({ ok: true }))
  app.post('/device-route', { onRequest: app.requireDevice }, async () => ({ ok: true }))
  await app.ready()
  return app
}

test('resolveAdminToken generates a token into DATA_DIR/admin-token with mode 0600, then reuses it', (t) => {
  const dir = tempDir(t)
  const first = resolveAdminToken(dir)
  assert.equal(first.source, 'generated')
  assert.equal(first.file, join(dir, ADMIN_TOKEN_FILE))
  assert.ok(first.token.length >= 32, 'a generated token is long')
  assert.equal(readFileSync(join(dir, ADMIN_TOKEN_FILE), 'utf8').trim(), first.token)
  assert.equal(statSync(join(dir, ADMIN_TOKEN_FILE)).mode & 0o777, 0o600)

  const second = resolveAdminToken(dir)
  assert.equal(second.source, 'file')
  assert.equal(second.token, first.token)

  // another data dir gets another token
  assert.notEqual(resolveAdminToken(tempDir(t)).token, first.token)
})

test('ADMIN_TOKEN wins over the file and writes nothing', (t) => {
  const dir = tempDir(t)
  assert.deepEqual(resolveAdminToken(dir, ADMIN), { token: ADMIN, source: 'env' })
  assert.equal(existsSync(join(dir, ADMIN_TOKEN_FILE)), false)
  const generated = resolveAdminToken(dir).token
  assert.equal(resolveAdminToken(dir, ADMIN).token, ADMIN)
  assert.notEqual(generated, ADMIN)
})

test('a token file too short to be a token is replaced, with mode 0600', (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, ADMIN_TOKEN_FILE), 'abc\n', { mode: 0o644 })
  const resolved = resolveAdminToken(dir)
  assert.equal(resolved.source, 'generated')
  assert.notEqual(resolved.token, 'abc')
  assert.equal(statSync(join(dir, ADMIN_TOKEN_FILE)).mode & 0o777, 0o600)
})

test('a stored token file others may read (0644) is tightened to 0600, with a warning that never holds the token', async (t) => {
  const dir = tempDir(t)
  const token = 'stored-token-0123456789-abcdef'
  const file = join(dir, ADMIN_TOKEN_FILE)
  writeFileSync(file, token + '\n')
  chmodSync(file, 0o644)
  assert.deepEqual(resolveAdminToken(dir), { token, source: 'file', file, tightenedFrom: 0o644 })
  assert.equal(statSync(file).mode & 0o777, 0o600)
  // already private: nothing to report
  assert.deepEqual(resolveAdminToken(dir), { token, source: 'file', file })

  // through the plugin: the warning is in the log, the token is not
  chmodSync(file, 0o640)
  const lines: string[] = []
  const app = Fastify({ loggerInstance: pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } }) })
  t.after(() => app.close())
  await app.register(authPlugin, { dataDir: dir })
  await app.ready()
  assert.equal(statSync(file).mode & 0o777, 0o600)
  const warning = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.level === 40 && line.file === file)
  assert.ok(warning, `no warning names ${file}:\n${lines.join('')}`)
  assert.equal(warning.mode, '0640')
  assert.match(String(warning.msg), /readable by other users: its mode is now 0600/)
  assert.ok(!lines.join('').includes(token), 'the token was logged')
})

test('HOST beyond loopback with DEVICE_TOKEN unset: a warning at start says the device routes are open and how to set the token', async (t) => {
  const warningsFor = async (options: { host: string, deviceToken?: string }): Promise<Array<Record<string, unknown>>> => {
    const lines: string[] = []
    const app = Fastify({ loggerInstance: pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } }) })
    t.after(() => app.close())
    await app.register(authPlugin, { dataDir: tempDir(t), adminToken: ADMIN, ...options })
    await app.ready()
    return lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.level === 40 && /DEVICE_TOKEN is unset/.test(String(line.msg)))
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'doorsense.lan']) {
    const [warning, ...more] = await warningsFor({ host })
    assert.ok(warning, `no warning for HOST=${host}`)
    assert.equal(more.length, 0)
    assert.equal(warning.host, host)
    assert.match(String(warning.msg), new RegExp(`HOST=${host.replace(/\./g, '\\.')} is not a loopback address`))
    assert.match(String(warning.msg), /device routes \(\/ml\/post\/\*, \/server\/post\/\*\) are open to anyone on the network/)
    assert.match(String(warning.msg), /Set DEVICE_TOKEN .*openssl rand/)
  }
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
    assert.deepEqual(await warningsFor({ host }), [], `HOST=${host} is loopback`)
  }
  assert.deepEqual(await warningsFor({ host: '0.0.0.0', deviceToken: DEVICE }), [], 'the token is set')
  assert.equal(isLoopbackHost('128.0.0.1'), false)

  // the app hands HOST to the plugin: the warning is in its log
  const dataDir = tempDir(t)
  const app = await buildTestApp(t, { HOST: '0.0.0.0', LOG_LEVEL: 'warn', LOG_TO_FILE: 'true' }, { dataDir })
  await app.close()
  const logged = readdirSync(join(dataDir, LOG_DIR)).map((name) => readFileSync(join(dataDir, LOG_DIR, name), 'utf8')).join('')
  assert.match(logged, /HOST=0\.0\.0\.0 is not a loopback address and DEVICE_TOKEN is unset/)
})

test('tokensEqual compares exactly, for tokens of any length', () => {
  assert.equal(tokensEqual(ADMIN, ADMIN), true)
  assert.equal(tokensEqual(ADMIN, ADMIN + 'x'), false)
  assert.equal(tokensEqual(ADMIN.slice(0, -1), ADMIN), false)
  assert.equal(tokensEqual('', ADMIN), false)
  assert.equal(tokensEqual(ADMIN.toUpperCase(), ADMIN), false)
})

test('requireAdmin: 401 when the header is missing, malformed or wrong; passes with the admin token', async (t) => {
  const app = await guardedApp(t, { adminToken: ADMIN, deviceToken: DEVICE })
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /missing Authorization header/],
    [{ authorization: ADMIN }, /malformed Authorization header/],
    [{ authorization: `Basic ${ADMIN}` }, /malformed/],
    [{ authorization: 'Bearer' }, /malformed/],
    [{ authorization: 'Bearer wrong-token-wrong-token' }, /wrong admin token/]
  ]
  for (const [headers, message] of cases) {
    const response = await app.inject({ method: 'GET', url: '/admin-only', headers })
    assert.equal(response.statusCode, 401, JSON.stringify(headers))
    assert.match(response.json().message, message)
    assert.equal(response.json().code, 'DS_UNAUTHORIZED')
  }
  const ok = await app.inject({ method: 'GET', url: '/admin-only', headers: { authorization: `Bearer ${ADMIN}` } })
  assert.equal(ok.statusCode, 200)
  assert.deepEqual(ok.json(), { ok: true })
  // the scheme is case-insensitive, as RFC 7235 says
  assert.equal((await app.inject({ method: 'GET', url: '/admin-only', headers: { authorization: `bearer ${ADMIN}` } })).statusCode, 200)
})

test('requireAdmin: the device token is a 403, not an admin', async (t) => {
  const app = await guardedApp(t, { adminToken: ADMIN, deviceToken: DEVICE })
  const response = await app.inject({ method: 'GET', url: '/admin-only', headers: { authorization: `Bearer ${DEVICE}` } })
  assert.equal(response.statusCode, 403)
  assert.equal(response.json().code, 'DS_FORBIDDEN')
  assert.match(response.json().message, /device token/)
})

test('requireDevice is open when DEVICE_TOKEN is unset', async (t) => {
  const app = await guardedApp(t, { adminToken: ADMIN })
  assert.equal((await app.inject({ method: 'POST', url: '/device-route' })).statusCode, 200)
  assert.equal((await app.inject({ method: 'POST', url: '/device-route', headers: { authorization: 'Bearer anything-at-all' } })).statusCode, 200)
})

test('requireDevice: 401 when DEVICE_TOKEN is set and the request lacks it; the device and admin tokens pass', async (t) => {
  const app = await guardedApp(t, { adminToken: ADMIN, deviceToken: DEVICE })
  const missing = await app.inject({ method: 'POST', url: '/device-route' })
  assert.equal(missing.statusCode, 401)
  assert.match(missing.json().message, /DEVICE_TOKEN/)
  const wrong = await app.inject({ method: 'POST', url: '/device-route', headers: { authorization: 'Bearer not-the-device-token' } })
  assert.equal(wrong.statusCode, 401)
  assert.match(wrong.json().message, /wrong device token/)
  assert.equal((await app.inject({ method: 'POST', url: '/device-route', headers: { authorization: `Bearer ${DEVICE}` } })).statusCode, 200)
  assert.equal((await app.inject({ method: 'POST', url: '/device-route', headers: { authorization: `Bearer ${ADMIN}` } })).statusCode, 200)
})

test('the auth plugin generates and uses a token when none is configured', async (t) => {
  const dataDir = tempDir(t)
  const app = Fastify()
  t.after(() => app.close())
  installErrorHandlers(app)
  await app.register(authPlugin, { dataDir })
  app.get('/admin-only', { onRequest: app.requireAdmin }, async () => ({ ok: true }))
  const token = readFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim()
  assert.equal((await app.inject({ method: 'GET', url: '/admin-only', headers: { authorization: `Bearer ${token}` } })).statusCode, 200)
  assert.equal((await app.inject({ method: 'GET', url: '/admin-only', headers: { authorization: 'Bearer x'.repeat(3) } })).statusCode, 401)
})

test('serve without ADMIN_TOKEN logs where the token file is, never the token; everything it creates is the owner\'s only', async (t) => {
  // a DATA_DIR that does not exist yet: the server creates it
  const dataDir = join(tempDir(t), 'data')
  // request lines at info too: the admin request below is logged, and must not carry the token
  const server = spawnServe(t, { DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_REQUESTS: 'info', LOG_TO_FILE: 'true' })
  const base = await listeningUrl(server)
  const tokenFile = join(dataDir, ADMIN_TOKEN_FILE)
  const line = server.logLines().find((entry) => entry.file === tokenFile)
  assert.ok(line, `no log line names ${tokenFile}:\n${server.stdout()}`)
  assert.match(String(line.msg), /ADMIN_TOKEN is unset/)
  // a first start is expected, not a problem: info, not a warning
  assert.equal(line.level, 30)
  const token = readFileSync(tokenFile, 'utf8').trim()

  // the token works, and an admin request (whose header carries it) is logged without it
  const response = await fetch(`${base}/debug/post/enable_logging`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ENABLED: 'True' })
  })
  assert.equal(response.status, 200)
  server.child.kill('SIGTERM')
  assert.equal(await exitWithin(server, 10_000), 0)

  // the umask (0022 here) would have left 0755 directories and 0644 files
  const modes = [
    dataDir,
    join(dataDir, LOG_DIR),
    ...readdirSync(dataDir).map((name) => join(dataDir, name)),
    ...readdirSync(join(dataDir, LOG_DIR)).map((name) => join(dataDir, LOG_DIR, name))
  ]
    .filter((path) => !path.endsWith('/models') && !path.includes('/models/'))
    .map((path) => [path.slice(dataDir.length) || '/', (statSync(path).mode & 0o777).toString(8)])
  const expected = modes.map(([path]) => [path, path === '/' || path === `/${LOG_DIR}` ? '700' : '600'])
  assert.deepEqual(modes, expected)
  for (const name of [ADMIN_TOKEN_FILE, 'doorsense.sqlite']) assert.ok(modes.some(([path]) => path === `/${name}`), `no ${name}`)
  assert.ok(modes.some(([path]) => path.startsWith(`/${LOG_DIR}/doorsense.`)), 'no log file')

  const fileLog = readdirSync(join(dataDir, LOG_DIR)).map((name) => readFileSync(join(dataDir, LOG_DIR, name), 'utf8')).join('')
  assert.match(fileLog, /admin-token/)
  for (const [where, text] of [['stdout', server.stdout()], ['stderr', server.stderr()], ['log file', fileLog]]) {
    assert.ok(!text.includes(token), `the admin token appears in ${where}`)
  }
})
