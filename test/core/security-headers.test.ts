/**
 * core/security-headers.ts writes the headers @fastify/helmet sent with the
 * options this app gave it, without building helmet's middleware on every
 * request. What the headers say and where: test/plugins/docs/security-headers.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import helmet from '@fastify/helmet'
import { CSP_DIRECTIVES, securityHeadersPlugin } from '../../core/security-headers.js'

/** An app answering a JSON body, a text body and an error, with `register` run first. */
async function appWith (register: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  await register(app)
  app.get('/json', async () => ({ ok: true }))
  app.get('/text', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Success'))
  app.get('/error', async () => { throw new Error('refused') })
  await app.ready()
  return app
}

/** The response's head as Node rendered it for the wire (names in their case, in order), but the date. */
function headerLines (response: Awaited<ReturnType<FastifyInstance['inject']>>): string[] {
  const head = (response.raw.res as unknown as { _header: string })._header
  return head.split('\r\n').filter((line) => !/^date:/i.test(line))
}

test('every answer carries, in the same order and case, exactly the headers @fastify/helmet sent with the options the app gave it', async (t) => {
  const ours = await appWith(async (app) => { await app.register(securityHeadersPlugin) })
  // the options core/security-headers.ts gave @fastify/helmet until it wrote the headers itself
  const helmets = await appWith(async (app) => {
    await app.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: Object.fromEntries(Object.entries(CSP_DIRECTIVES).map(([name, sources]) => [name, [...sources]]))
      },
      xFrameOptions: { action: 'deny' },
      strictTransportSecurity: false
    })
  })
  t.after(async () => { await ours.close(); await helmets.close() })
  for (const url of ['/json', '/text', '/error', '/no-such-route']) {
    const [mine, theirs] = await Promise.all([ours.inject(url), helmets.inject(url)])
    assert.equal(mine.statusCode, theirs.statusCode, url)
    assert.deepEqual(headerLines(mine), headerLines(theirs), url)
    assert.equal(mine.body, theirs.body, url)
  }
})

test('a route may replace a security header on the raw response, as it could under helmet (the typedoc pages\' policy)', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(securityHeadersPlugin)
  app.get('/page', async (_request, reply) => {
    reply.raw.setHeader('content-security-policy', "default-src 'self'; script-src 'self' 'sha256-abc'")
    return reply.type('text/html; charset=utf-8').send('<!doctype html>')
  })
  const response = await app.inject('/page')
  assert.equal(response.headers['content-security-policy'], "default-src 'self'; script-src 'self' 'sha256-abc'")
  assert.equal(response.headers['x-content-type-options'], 'nosniff')
})
