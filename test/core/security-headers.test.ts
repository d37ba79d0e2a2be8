/**
 * core/security-headers.ts writes the headers @fastify/helmet sent with the
 * options this app gave it, without building helmet's middleware on every
 * request: all of them on the pages (routes hidden from the OpenAPI
 * document); the API's routes and unknown URLs carry four of their own
 * (a policy that lets nothing load, CORP, nosniff, no framing). What the headers say on the whole app: test/plugins/docs/security-headers.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import helmet from '@fastify/helmet'
import { ANSWER_SECURITY_HEADERS, API_CSP, CSP_DIRECTIVES, SECURITY_HEADERS, securityHeadersPlugin } from '../../core/security-headers.js'

/** An app answering a JSON body, a text body and an error on API routes, and a page hidden from the document, with `register` run first. */
async function appWith (register: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  await register(app)
  app.get('/json', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }))
  app.get('/text', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Success'))
  app.get('/error', async () => { throw new Error('refused') })
  app.get('/page', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html>'))
  await app.ready()
  return app
}

/** The response's head as Node rendered it for the wire (names in their case, in order), but the date. */
function headerLines (response: Awaited<ReturnType<FastifyInstance['inject']>>): string[] {
  const head = (response.raw.res as unknown as { _header: string })._header
  return head.split('\r\n').filter((line) => !/^date:/i.test(line))
}

/** The helmet app: the options core/security-headers.ts gave @fastify/helmet until it wrote the headers itself. */
const withHelmet = async (app: FastifyInstance) => {
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: Object.fromEntries(Object.entries(CSP_DIRECTIVES).map(([name, sources]) => [name, [...sources]]))
    },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: false
  })
}

test('a page carries every header @fastify/helmet sent, in its case; an API answer, an error and an unknown URL the four of an answer', async (t) => {
  const ours = await appWith(async (app) => { await app.register(securityHeadersPlugin) })
  const helmets = await appWith(withHelmet)
  t.after(async () => { await ours.close(); await helmets.close() })
  const security = new Set(SECURITY_HEADERS.map(([name]) => name.toLowerCase()))
  const nameOf = (line: string) => line.slice(0, line.indexOf(':')).toLowerCase()
  const answerLines = ANSWER_SECURITY_HEADERS.map(([name, value]) => `${name}: ${value}`)
  for (const url of ['/json', '/text', '/error', '/no-such-route', '/page']) {
    const [mine, theirs] = await Promise.all([ours.inject(url), helmets.inject(url)])
    assert.equal(mine.statusCode, theirs.statusCode, url)
    assert.equal(mine.body, theirs.body, url)
    const own = (lines: string[]) => lines.filter((line) => !security.has(nameOf(line)))
    // the page: helmet's lines exactly; an answer: helmet's own lines and the four
    const expected = url === '/page' ? headerLines(theirs) : [...own(headerLines(theirs)), ...answerLines]
    assert.deepEqual([...headerLines(mine)].sort(), [...expected].sort(), url)
    // the answer's own headers in helmet's order
    assert.deepEqual(own(headerLines(mine)), own(expected), url)
  }
  // an API answer's policy lets nothing load and nothing frame it; every one of its headers is also a page's
  assert.equal(API_CSP, "default-src 'none'; frame-ancestors 'none'")
  for (const [name] of ANSWER_SECURITY_HEADERS) assert.ok(security.has(name.toLowerCase()), name)
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
