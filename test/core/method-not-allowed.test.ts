import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type HTTPMethods } from 'fastify'
import { installErrorHandlers } from '../../core/errors.js'
import { buildTestApp } from '../helper.js'

test('a known path called with the wrong method is a 405 whose Allow header lists the methods it has', async (t) => {
  const app = await buildTestApp(t)
  const cases: Array<[HTTPMethods, string, string]> = [
    ['GET', '/server/post/frames', 'POST'],
    ['PUT', '/doors/1', 'GET, HEAD, PATCH, DELETE'],
    ['POST', '/debug/get/exists?probe=1', 'GET, HEAD'],
    ['DELETE', '/training/post/train', 'POST'],
    ['GET', '/doors/1/calibration/capture', 'POST, DELETE'],
    ['PATCH', '/doors/1/calibration', 'DELETE'],
    ['OPTIONS', '/ml/post/inference', 'POST'],
    ['POST', '/training/get/model/csi-1/weights.bin', 'GET, HEAD'],
    ['POST', '/docs/index.html', 'GET, HEAD']
  ]
  for (const [method, url, allow] of cases) {
    const response = await app.inject({ method, url })
    assert.equal(response.statusCode, 405, `${method} ${url}: ${response.body}`)
    assert.equal(response.headers.allow, allow, `${method} ${url}`)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    const path = url.split('?')[0]
    assert.deepEqual(response.json(), {
      statusCode: 405,
      error: 'Method Not Allowed',
      message: `${method} is not allowed on ${path}: it takes ${allow}`,
      code: 'DS_METHOD_NOT_ALLOWED'
    })
    // each method the header lists does reach a route (whatever that route answers)
    for (const listed of allow.split(', ') as HTTPMethods[]) {
      const reached = await app.inject({ method: listed, url })
      assert.notEqual(reached.statusCode, 405, `${listed} ${url}`)
      if (reached.statusCode === 404 && listed !== 'HEAD') assert.doesNotMatch(reached.json().message, /^no route/, `${listed} ${url}`)
    }
  }
  const head = await app.inject({ method: 'HEAD', url: '/server/post/keep_alive' })
  assert.equal(head.statusCode, 405)
  assert.equal(head.headers.allow, 'POST')
  assert.equal(head.body, '', 'a HEAD answer has no body')
  assert.equal((await app.inject({ method: 'HEAD', url: '/debug/get/exists' })).statusCode, 200, 'HEAD is served where GET is')
})

test('an unknown path stays a 404 "no route", and a route\'s own 404 stays its own', async (t) => {
  const app = await buildTestApp(t)
  for (const [method, url] of [
    ['GET', '/server/post/nothing'],
    ['POST', '/doors/1/nothing'],
    ['DELETE', '/no/such/route'],
    ['GET', '/server/post/frames/extra']
  ] as const) {
    const response = await app.inject({ method, url })
    assert.equal(response.statusCode, 404, `${method} ${url}`)
    assert.equal(response.headers.allow, undefined)
    assert.deepEqual(response.json(), { statusCode: 404, error: 'Not Found', message: `no route ${method} ${url}`, code: 'DS_NOT_FOUND' })
  }
  const noDoor = await app.inject('/doors/999')
  assert.equal(noDoor.statusCode, 404)
  assert.match(noDoor.json().message, /^no door 999/)
})

test('the route table is collected from routes registered after the handlers were installed, in any plugin', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  installErrorHandlers(app)
  app.get('/things/:id', async () => ({}))
  await app.register(async (child) => {
    child.put('/things/:id', async () => ({}))
    child.route({ method: ['POST', 'DELETE'], url: '/batch/*', handler: async () => ({}) })
  }, { prefix: '/v1' })
  const things = await app.inject({ method: 'POST', url: '/things/7' })
  assert.equal(things.statusCode, 405)
  assert.equal(things.headers.allow, 'GET, HEAD')
  const prefixed = await app.inject({ method: 'GET', url: '/v1/things/7' })
  assert.equal(prefixed.headers.allow, 'PUT')
  const wildcard = await app.inject({ method: 'GET', url: '/v1/batch/a/b' })
  assert.equal(wildcard.statusCode, 405)
  assert.equal(wildcard.headers.allow, 'POST, DELETE')
  assert.equal((await app.inject({ method: 'GET', url: '/things' })).statusCode, 404)
})
