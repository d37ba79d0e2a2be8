import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { PROJECT_ROOT } from '../../../core/project.js'
import { authPlugin } from '../../../core/auth.js'
import { installErrorHandlers } from '../../../core/errors.js'
import { debugRoutes } from '../../../plugins/debug/routes.js'
import type { RedeployLauncher } from '../../../plugins/debug/redeploy.js'
import { ADMIN, ADMIN_TOKEN, buildTestApp, tempDir } from '../../helper.js'

const packageVersion = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version
const isText = (contentType: unknown) => typeof contentType === 'string' && contentType.startsWith('text/plain')

test('exists answers "Success" as text, also to HEAD', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ url: '/debug/get/exists' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'Success')
  assert.ok(isText(res.headers['content-type']))
  assert.equal((await app.inject({ method: 'HEAD', url: '/debug/get/exists' })).statusCode, 200)
})

test('time answers the server time as ISO-8601 text', async (t) => {
  const app = await buildTestApp(t)
  const before = Date.now()
  const res = await app.inject({ url: '/debug/get/time' })
  assert.equal(res.statusCode, 200)
  assert.ok(isText(res.headers['content-type']))
  assert.match(res.body, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  const time = Date.parse(res.body)
  assert.ok(time >= before && time <= Date.now(), res.body)
})

test('version/server answers the package.json version as text', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ url: '/debug/get/version/server' })
  assert.equal(res.statusCode, 200)
  assert.ok(isText(res.headers['content-type']))
  assert.equal(res.body, packageVersion)
})

test('tensorflow and model handler versions, and the training failure, follow fastify.model', async (t) => {
  const app = await buildTestApp(t)
  const tf = await app.inject({ url: '/debug/get/version/tensorflow' })
  const handler = await app.inject({ url: '/debug/get/version/tf_model_handler' })
  const failure = await app.inject({ url: '/debug/get/training_failure' })
  assert.deepEqual([tf.statusCode, handler.statusCode, failure.statusCode], [200, 200, 200])
  assert.ok(isText(tf.headers['content-type']) && isText(handler.headers['content-type']))
  assert.match(failure.headers['content-type'] as string, /^application\/json/)
  if (app.hasDecorator('model')) {
    // the model area is built: the routes report the real handler
    assert.ok(tf.body.startsWith(app.model.backend.tfjsVersion), tf.body)
    assert.ok(tf.body.includes(app.model.backend.backend), tf.body)
    assert.equal(handler.body, app.model.handlerVersion)
    assert.equal(failure.json().failed, app.model.lastFailure !== undefined)
  } else {
    assert.equal(tf.body, 'not loaded')
    assert.equal(handler.body, 'not loaded')
    assert.deepEqual(failure.json(), { failed: false, message: 'no training has failed (model handler not loaded)' })
  }
})

test('echo answers any JSON unchanged', async (t) => {
  const app = await buildTestApp(t)
  for (const value of [{ a: [1, 2.5, { b: null }], c: 'ü' }, [1, 'two', false], 'a string', 42, null, true, {}]) {
    const res = await app.inject({ method: 'POST', url: '/debug/post/echo', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(value) })
    assert.equal(res.statusCode, 200, res.body)
    assert.match(res.headers['content-type'] as string, /^application\/json/)
    assert.deepEqual(res.json(), value)
  }
})

test('echo refuses what is not a JSON body, saying why', async (t) => {
  const app = await buildTestApp(t, { BODY_LIMIT: '1024' })
  const cases: Array<{ headers?: Record<string, string>, payload?: string, status: number, message: RegExp }> = [
    { headers: { 'content-type': 'application/json' }, payload: '{"a": ', status: 400, message: /not valid JSON/ },
    { headers: { 'content-type': 'application/json' }, payload: '', status: 400, message: /Body cannot be empty/ },
    { status: 400, message: /echo needs a JSON body/ },
    {
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
      status: 415,
      message: /unsupported Content-Type "text\/plain" \(JSON routes take application\/json/
    },
    {
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ big: 'x'.repeat(2000) }),
      status: 413,
      message: /larger than this route.s limit of 1024 bytes/
    }
  ]
  for (const { headers, payload, status, message } of cases) {
    const res = await app.inject({ method: 'POST', url: '/debug/post/echo', ...(headers ? { headers } : {}), ...(payload !== undefined ? { payload } : {}) })
    assert.equal(res.statusCode, status, res.body)
    assert.match(res.json().message, message)
  }
})

/**
 * The debug routes alone, on a launcher standing in for bin/redeploy: the real
 * one, in a git checkout, would pull, reinstall and restart servers from a test.
 * Log lines at warn and above are collected in `warnings`.
 */
async function debugRoutesWith (t: TestContext, launcher: RedeployLauncher) {
  const warnings: string[] = []
  const stream = { write: (line: string) => { warnings.push((JSON.parse(line) as { msg: string }).msg) } }
  const app = Fastify({ logger: { level: 'warn', stream } }).withTypeProvider<TypeBoxTypeProvider>()
  t.after(() => app.close())
  installErrorHandlers(app)
  await app.register(authPlugin, { dataDir: tempDir(t), adminToken: ADMIN_TOKEN, deviceToken: 'pi-shared-secret' })
  await app.register(debugRoutes, { launcher })
  return { app, warnings }
}

/** A launcher that counts its starts; `running` says whether a redeploy holds the lock. */
function standInLauncher (outcome: { configured: boolean, pid?: number }, running = false) {
  const launcher = { starts: 0, isRunning: () => running, start: () => { launcher.starts++; return outcome } }
  return launcher
}

test('redeploy needs the admin token: 401 without or wrong, 403 with the device token (whole app)', async (t) => {
  // the guard answers before the handler, so the real launcher is never reached here
  const app = await buildTestApp(t, { DEVICE_TOKEN: 'pi-shared-secret' })
  const missing = await app.inject({ method: 'POST', url: '/debug/post/redeploy' })
  assert.equal(missing.statusCode, 401)
  assert.match(missing.json().message, /ADMIN_TOKEN/)
  const wrong = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: { authorization: 'Bearer not-the-admin-token' } })
  assert.equal(wrong.statusCode, 401)
  assert.match(wrong.json().message, /wrong admin token/)
  const device = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: { authorization: 'Bearer pi-shared-secret' } })
  assert.equal(device.statusCode, 403)
})

test('redeploy with the admin token starts the launcher once and answers 202 with its pid', async (t) => {
  const launcher = standInLauncher({ configured: true, pid: 4242 })
  const { app, warnings } = await debugRoutesWith(t, launcher)
  assert.equal((await app.inject({ method: 'POST', url: '/debug/post/redeploy' })).statusCode, 401)
  assert.equal(launcher.starts, 0)
  const res = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(res.statusCode, 202)
  assert.deepEqual(res.json(), { accepted: true, configured: true, pid: 4242 })
  assert.equal(launcher.starts, 1)
  assert.deepEqual(warnings.filter((w) => /redeploy/.test(w)), ['redeploy started on request'])
})

test('redeploy where it is not configured answers 202 configured:false and logs a warning', async (t) => {
  const launcher = standInLauncher({ configured: false })
  const { app, warnings } = await debugRoutesWith(t, launcher)
  const res = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(res.statusCode, 202)
  assert.deepEqual(res.json(), { accepted: true, configured: false })
  assert.ok(warnings.some((w) => /not configured on this host/.test(w)), warnings.join(' | '))
})

test('redeploy answers 409 while one runs, and starts nothing', async (t) => {
  const launcher = standInLauncher({ configured: true, pid: 1 }, true)
  const { app } = await debugRoutesWith(t, launcher)
  const res = await app.inject({ method: 'POST', url: '/debug/post/redeploy', headers: ADMIN })
  assert.equal(res.statusCode, 409)
  assert.equal(res.json().code, 'DS_CONFLICT')
  assert.match(res.json().message, /already running/)
  assert.equal(launcher.starts, 0)
})

test('enable_logging flips request logging with "True"/"False" or booleans (admin only)', async (t) => {
  const app = await buildTestApp(t)
  const post = (body: unknown, headers: Record<string, string> = ADMIN) =>
    app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers, payload: body as object })
  assert.equal((await post({ ENABLED: 'False' }, {})).statusCode, 401)
  assert.equal((await post({ ENABLED: 'False' }, { authorization: 'Bearer wrong-token-here' })).statusCode, 401)
  assert.equal(app.requestLogging.enabled, true, 'untouched by refused calls')
  for (const [value, expected] of [['False', false], ['True', true], [false, false], [true, true]] as const) {
    const res = await post({ ENABLED: value })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), { ENABLED: expected, message: `request logging is ${expected ? 'on' : 'off'}` })
    assert.equal(app.requestLogging.enabled, expected)
  }
})

test('enable_logging refuses anything but "True"/"False"/booleans, naming ENABLED, and keeps the setting', async (t) => {
  const app = await buildTestApp(t)
  await app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers: ADMIN, payload: { ENABLED: 'False' } })
  for (const body of [
    { ENABLED: 'true' }, { ENABLED: 'yes' }, { ENABLED: 1 }, { ENABLED: 0 }, { ENABLED: null }, { ENABLED: ['True'] }, {}, { enabled: true }
  ]) {
    const res = await app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers: ADMIN, payload: body })
    assert.equal(res.statusCode, 400, JSON.stringify(body))
    assert.match(res.json().message, /ENABLED/, JSON.stringify(body))
    assert.equal(app.requestLogging.enabled, false, JSON.stringify(body))
  }
  const text = await app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers: { ...ADMIN, 'content-type': 'text/plain' }, payload: 'True' })
  assert.equal(text.statusCode, 415)
})

test('the debug routes are in the OpenAPI document, the text ones as text/plain', async (t) => {
  const app = await buildTestApp(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>
  }
  for (const path of [
    '/debug/get/exists',
    '/debug/get/time',
    '/debug/get/version/server',
    '/debug/get/version/tensorflow',
    '/debug/get/version/tf_model_handler'
  ]) {
    assert.deepEqual(Object.keys(doc.paths[path]?.get?.responses['200']?.content ?? {}), ['text/plain'], path)
  }
  for (const path of ['/debug/post/echo', '/debug/post/redeploy', '/debug/post/enable_logging']) assert.ok(doc.paths[path]?.post, path)
  assert.ok(doc.paths['/debug/get/training_failure']?.get)
})
