import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_PATH_PARAMETER_LENGTH } from '../../core/router-errors.js'
import { buildTestApp } from '../helper.js'

test('a path parameter longer than the router takes is a 400 with the usual error body (it was a 414 of Fastify\'s own, quoting the path)', async (t) => {
  const app = await buildTestApp(t)
  const long = 'x'.repeat(MAX_PATH_PARAMETER_LENGTH + 1)
  for (const url of [`/doors/${long}`, `/training/get/model/${long}/weights.bin`, `/training/get/capture/${long}`]) {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.statusCode, 400, url)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    assert.deepEqual(response.json(), {
      statusCode: 400,
      error: 'Bad Request',
      code: 'DS_BAD_REQUEST',
      message: `a path parameter is longer than ${MAX_PATH_PARAMETER_LENGTH} characters`
    })
  }
  // one character less reaches the route, which names what is wrong with the value
  const atLimit = await app.inject({ method: 'GET', url: `/doors/${'x'.repeat(MAX_PATH_PARAMETER_LENGTH)}` })
  assert.equal(atLimit.statusCode, 400)
  assert.match(atLimit.json<{ message: string }>().message, /id/)
})

test('a path with a broken percent-encoding is a 400 through the error handler', async (t) => {
  const app = await buildTestApp(t)
  for (const url of ['/doors/%zz', '/doors/%c0%af', '/training/get/model/%/model.json']) {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.statusCode, 400, url)
    const body = response.json<{ statusCode: number, error: string, code: string, message: string }>()
    assert.deepEqual([body.statusCode, body.error, body.code], [400, 'Bad Request', 'FST_ERR_BAD_URL'])
    assert.match(body.message, /not a valid url component/)
  }
})
