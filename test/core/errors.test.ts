import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import sensible from '@fastify/sensible'
import {
  BadFrameError, BadRequestError, ConflictError, ForbiddenError, formatValidationErrors, installErrorHandlers, NoModelError, NotFoundError,
  OverloadedError, RETRY_AFTER_S, toErrorBody, TrainingBusyError, UnauthorizedError, UnavailableError
} from '../../core/errors.js'
import { ADMIN, buildTestApp } from '../helper.js'

/** Asserts the one error shape and returns the parsed body. */
function errorBody (response: LightMyRequestResponse, statusCode: number): { statusCode: number, error: string, message: string, code?: string } {
  assert.equal(response.statusCode, statusCode, response.body)
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const body = response.json()
  assert.deepEqual(Object.keys(body).filter((key) => !['statusCode', 'error', 'message', 'code'].includes(key)), [], `extra keys in ${response.body}`)
  assert.equal(body.statusCode, statusCode)
  assert.equal(typeof body.error, 'string')
  assert.ok(body.error.length > 0)
  assert.equal(typeof body.message, 'string')
  assert.ok(body.message.length > 0)
  if ('code' in body) assert.equal(typeof body.code, 'string')
  return body
}

/** A bare Fastify with the app's ajv options, the error handlers and a few routes that fail on purpose. */
async function bareApp (t: import('node:test').TestContext): Promise<FastifyInstance> {
  const app = Fastify({ ajv: { customOptions: { coerceTypes: 'array', allErrors: false, removeAdditional: true } } })
  t.after(() => app.close())
  installErrorHandlers(app)
  await app.register(sensible)
  app.post('/devices', {
    schema: {
      body: {
        type: 'object',
        required: ['NAME', 'ID'],
        properties: { NAME: { type: 'string', minLength: 1 }, ID: { type: 'integer', minimum: 0, maximum: 32767 } }
      }
    }
  }, async (request) => request.body)
  app.get('/devices/:id', { schema: { params: { type: 'object', properties: { id: { type: 'integer' } } } } }, async () => ({}))
  app.get('/accident', async () => { throw new Error('open /srv/secret/path failed') })
  app.get('/accident-with-code', async () => {
    throw Object.assign(new Error('SQLITE_BUSY: database is locked at /srv/doorsense.sqlite'), { code: 'SQLITE_BUSY' })
  })
  // eslint-disable-next-line no-throw-literal -- a careless throw of a non-Error must still get the one shape
  app.get('/thrown-string', async () => { throw 'a string' as unknown as Error })
  app.get('/no-model', async () => { throw new NoModelError('no model is trained yet: POST /training/post/train first') })
  app.get('/overloaded', async () => { throw new OverloadedError('the inference queue is full (16384 frames)') })
  app.get('/bad-frame', async () => { throw new BadFrameError('frame 3: expected 106 numbers, got 105') })
  return app
}

test('coded errors carry their status and a DS_ code', () => {
  const cases: Array<[Error & { statusCode?: number, code?: string }, number, string]> = [
    [new BadRequestError('x'), 400, 'DS_BAD_REQUEST'],
    [new BadFrameError('x'), 400, 'DS_BAD_FRAME'],
    [new UnauthorizedError('x'), 401, 'DS_UNAUTHORIZED'],
    [new ForbiddenError('x'), 403, 'DS_FORBIDDEN'],
    [new NotFoundError('x'), 404, 'DS_NOT_FOUND'],
    [new ConflictError('x'), 409, 'DS_CONFLICT'],
    [new TrainingBusyError('x'), 409, 'DS_TRAINING_BUSY'],
    [new NoModelError('x'), 503, 'DS_NO_MODEL'],
    [new OverloadedError('x'), 503, 'DS_OVERLOADED'],
    [new UnavailableError('x'), 503, 'DS_UNAVAILABLE']
  ]
  for (const [err, statusCode, code] of cases) {
    assert.equal(err.statusCode, statusCode, code)
    assert.equal(err.code, code)
    assert.equal(err.message, 'x', 'the message is the one given, nothing added')
    assert.deepEqual(toErrorBody(err as never), { statusCode, error: toErrorBody(err as never).error, message: 'x', code })
  }
})

test('a validation error is a 400 naming the field', async (t) => {
  const app = await bareApp(t)
  const wrongType = errorBody(await app.inject({ method: 'POST', url: '/devices', payload: { NAME: 'pi', ID: 'seven' } }), 400)
  assert.match(wrongType.message, /body\/ID/)
  assert.equal(wrongType.code, 'FST_ERR_VALIDATION')
  assert.equal(wrongType.error, 'Bad Request')

  assert.match(errorBody(await app.inject({ method: 'POST', url: '/devices', payload: { NAME: 'pi', ID: 40000 } }), 400).message, /body\/ID must be <= 32767/)
  assert.match(errorBody(await app.inject({ method: 'POST', url: '/devices', payload: { ID: 1 } }), 400).message, /NAME/)
  assert.match(errorBody(await app.inject({ method: 'GET', url: '/devices/abc' }), 400).message, /params\/id/)
})

test('an enum refusal names the allowed values and what came (ajv says only "one of the allowed values")', () => {
  const error = {
    keyword: 'enum',
    instancePath: '/layout',
    schemaPath: '#/properties/layout/enum',
    params: { allowedValues: ['pi108', 'esp128'] },
    message: 'must be equal to one of the allowed values',
    data: 'pi100'
  }
  assert.equal(formatValidationErrors([error], 'querystring').message, 'querystring/layout must be one of pi108, esp128, got "pi100"')
})

test('malformed JSON, an empty JSON body and an unknown content-type are 4xx with the standard shape', async (t) => {
  const app = await bareApp(t)
  const malformed = errorBody(await app.inject({
    method: 'POST',
    url: '/devices',
    headers: { 'content-type': 'application/json' },
    payload: '{"NAME": "pi", '
  }), 400)
  assert.match(malformed.message, /JSON/)
  const empty = errorBody(await app.inject({ method: 'POST', url: '/devices', headers: { 'content-type': 'application/json' }, payload: '' }), 400)
  assert.match(empty.message, /empty/)
  const unsupported = errorBody(await app.inject({ method: 'POST', url: '/devices', headers: { 'content-type': 'application/xml' }, payload: '<pi/>' }), 415)
  assert.equal(unsupported.error, 'Unsupported Media Type')
})

test('an accidental 500 hides its message and its code', async (t) => {
  const app = await bareApp(t)
  for (const url of ['/accident', '/accident-with-code', '/thrown-string']) {
    const response = await app.inject({ method: 'GET', url })
    const body = errorBody(response, 500)
    assert.deepEqual(body, { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, url)
    assert.ok(!response.body.includes('secret') && !response.body.includes('SQLITE'), `${url} leaked: ${response.body}`)
  }
})

test('a deliberate 503 keeps its message and carries Retry-After', async (t) => {
  const app = await bareApp(t)
  for (const [url, code] of [['/no-model', 'DS_NO_MODEL'], ['/overloaded', 'DS_OVERLOADED']]) {
    const response = await app.inject({ method: 'GET', url })
    const body = errorBody(response, 503)
    assert.equal(body.code, code)
    assert.equal(body.error, 'Service Unavailable')
    assert.doesNotMatch(body.message, /Internal Server Error/)
    assert.equal(response.headers['retry-after'], String(RETRY_AFTER_S))
  }
  // a 4xx is not told to retry
  const badFrame = await app.inject({ method: 'GET', url: '/bad-frame' })
  assert.equal(errorBody(badFrame, 400).message, 'frame 3: expected 106 numbers, got 105')
  assert.equal(badFrame.headers['retry-after'], undefined)
})

test('an unknown route is a 404 naming the method and path', async (t) => {
  const app = await bareApp(t)
  const body = errorBody(await app.inject({ method: 'DELETE', url: '/no/such/route' }), 404)
  assert.equal(body.message, 'no route DELETE /no/such/route')
  assert.equal(body.code, 'DS_NOT_FOUND')
  assert.equal(body.error, 'Not Found')
})

test('toErrorBody maps odd status codes to 500', () => {
  assert.equal(toErrorBody(Object.assign(new Error('x'), { statusCode: 302 }) as never).statusCode, 500)
  assert.equal(toErrorBody(Object.assign(new Error('x'), { statusCode: 'teapot' }) as never).statusCode, 500)
  assert.equal(toErrorBody(Object.assign(new Error('x'), { statusCode: 418 }) as never).error, "I'm a Teapot")
})

test('the real app: malformed JSON, unknown route, missing token and validation use the one shape', async (t) => {
  const app = await buildTestApp(t)
  const json = { 'content-type': 'application/json' }
  const malformed = errorBody(await app.inject({ method: 'POST', url: '/debug/post/echo', headers: json, payload: '{"a": [1, 2' }), 400)
  assert.match(malformed.message, /not valid JSON/)

  const unknown = errorBody(await app.inject({ method: 'GET', url: '/debug/get/nothing-here' }), 404)
  assert.match(unknown.message, /GET \/debug\/get\/nothing-here/)

  const unauthorized = errorBody(await app.inject({ method: 'POST', url: '/debug/post/enable_logging', payload: { ENABLED: 'True' } }), 401)
  assert.match(unauthorized.message, /Authorization/)

  const badSwitch = errorBody(await app.inject({ method: 'POST', url: '/debug/post/enable_logging', headers: ADMIN, payload: {} }), 400)
  assert.match(badSwitch.message, /ENABLED/)

  const badId = errorBody(await app.inject({ method: 'POST', url: '/server/post/keep_alive', payload: { NAME: 'pi', ID: 'seven' } }), 400)
  assert.match(badId.message, /ID/)
})

test('an accidental 500 is logged as an error with its stack; a deliberate 503 and a 4xx are request lines without one', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.after(() => app.close())
  installErrorHandlers(app)
  app.get('/accident', async () => { throw new Error('disk on fire') })
  app.get('/no-model', async () => { throw new NoModelError('no model is trained yet') })
  app.get('/bad', async () => { throw new BadRequestError('ID must be 0..32767, got 40000') })
  await app.inject('/accident')
  await app.inject('/no-model')
  await app.inject('/bad')

  const failed = lines.filter((line) => line.msg === 'request failed')
  assert.equal(failed.length, 1)
  assert.equal(failed[0].level, 50)
  assert.match(String((failed[0].err as { stack?: string }).stack), /disk on fire/)

  const rejected = lines.filter((line) => line.msg === 'request rejected')
  assert.deepEqual(rejected.map((line) => [line.level, line.statusCode, line.code]), [[40, 503, 'DS_NO_MODEL'], [30, 400, 'DS_BAD_REQUEST']])
  assert.ok(rejected.every((line) => line.err === undefined), 'a refusal was logged with a stack')
})
