/**
 * Security headers (@fastify/helmet) on every answer of the whole app: the
 * dashboard, the JSON routes, errors, Swagger UI and the typedoc site. What a
 * browser makes of them is test/plugins/dashboard/csp-browser.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { CSP_DIRECTIVES, contentSecurityPolicy, securityHeadersPlugin } from '../../../core/security-headers.js'
import docs from '../../../plugins/docs/index.js'
import { buildTestApp, tempDir } from '../../helper.js'

/** A header value parsed into directive name to sources. */
function directives (header: unknown): Map<string, string[]> {
  assert.equal(typeof header, 'string', 'a Content-Security-Policy header')
  return new Map((header as string).split(';').map((part) => part.trim()).filter(Boolean).map((part) => {
    const [name, ...sources] = part.split(/\s+/)
    return [name as string, sources]
  }))
}

test('every page carries the policy (own origin only, no inline script or style, no framing), an API answer one that lets nothing load; ' +
  'nosniff and no HSTS on all; the dashboard page needs nothing more', async (t) => {
  const app = await buildTestApp(t)
  for (const url of ['/', '/openapi.json', '/metrics', '/documentation/']) {
    const response = await app.inject({ method: 'GET', url })
    const policy = directives(response.headers['content-security-policy'])
    assert.deepEqual(policy.get('default-src'), ["'self'"], url)
    assert.deepEqual(policy.get('script-src'), ["'self'"], `${url}: scripts from doorsense only, nothing inline`)
    assert.deepEqual(policy.get('script-src-attr'), ["'none'"], `${url}: no inline event handlers`)
    assert.deepEqual(policy.get('style-src'), ["'self'"], `${url}: no inline styles`)
    assert.deepEqual(policy.get('frame-ancestors'), ["'none'"], url)
    assert.deepEqual(policy.get('object-src'), ["'none'"], url)
    assert.equal(policy.has('upgrade-insecure-requests'), false, `${url}: a LAN server on plain HTTP must not have its own requests upgraded`)
    // only Swagger UI's pages take data: images (its stylesheet's icons)
    assert.deepEqual(policy.get('img-src'), url === '/documentation/' ? ["'self'", 'data:'] : ["'self'"], url)
    assert.equal(response.headers['referrer-policy'], 'no-referrer', url)
    assert.equal(response.headers['x-dns-prefetch-control'], 'off', url)
  }
  for (const url of ['/debug/get/exists', '/doors', '/no-such-route']) {
    const response = await app.inject({ method: 'GET', url })
    assert.deepEqual(directives(response.headers['content-security-policy']), new Map([['default-src', ["'none'"]], ['frame-ancestors', ["'none'"]]]), url)
    assert.equal(response.headers['referrer-policy'], undefined, `${url}: an answer that loads nothing sends no Referer`)
    assert.equal(response.headers['x-dns-prefetch-control'], undefined, `${url}: the pages' headers are the pages'`)
  }
  for (const url of ['/', '/debug/get/exists', '/doors', '/openapi.json', '/metrics', '/documentation/', '/no-such-route']) {
    const response = await app.inject({ method: 'GET', url })
    assert.equal(response.headers['x-content-type-options'], 'nosniff', url)
    assert.equal(response.headers['x-frame-options'], 'DENY', url)
    assert.equal(response.headers['cross-origin-resource-policy'], 'same-origin', url)
    assert.equal(response.headers['strict-transport-security'], undefined, `${url}: HSTS is the TLS proxy's to send`)
  }
  // an error body and a refused write carry them too
  const refused = await app.inject({ method: 'POST', url: '/training/post/train', payload: {} })
  assert.equal(refused.statusCode, 401)
  assert.equal(refused.headers['x-content-type-options'], 'nosniff')

  // the dashboard's page holds nothing the policy would block
  const page = await app.inject({ method: 'GET', url: '/' })
  assert.equal(page.statusCode, 200)
  assert.doesNotMatch(page.body, /<script\b(?![^>]*\bsrc=)[^>]*>/i, 'every <script> has a src')
  assert.doesNotMatch(page.body, /\son[a-z]+\s*=/i, 'no inline event handler')
  assert.doesNotMatch(page.body, /\sstyle\s*=|<style\b/i, 'no inline style')
})

test('a typedoc page may run exactly its own inline scripts, by hash, and inline styles; other files keep the plain policy', async (t) => {
  const site = join(tempDir(t), 'site')
  mkdirSync(site)
  const inline = 'document.documentElement.dataset.theme = localStorage.getItem("tsd-theme") || "os"'
  writeFileSync(join(site, 'index.html'), '<!doctype html><html><head><script defer src="main.js"></script></head>' +
    `<body><script>${inline}</script><script>${inline}</script></body></html>`)
  writeFileSync(join(site, 'main.js'), 'console.log("hi")')
  const app = Fastify()
  t.after(() => app.close())
  await app.register(securityHeadersPlugin)
  await app.register(docs, { dir: site })

  const index = await app.inject({ method: 'GET', url: '/docs/' })
  assert.equal(index.statusCode, 200)
  const hash = `'sha256-${createHash('sha256').update(inline).digest('base64')}'`
  assert.deepEqual(directives(index.headers['content-security-policy']).get('script-src'), ["'self'", hash], 'the one inline script, once')
  assert.deepEqual(directives(index.headers['content-security-policy']).get('style-src'), ["'self'", "'unsafe-inline'"],
    'typedoc writes a stylesheet at run time')
  assert.equal(index.headers['content-security-policy'], contentSecurityPolicy({ 'script-src': [hash], 'style-src': ["'unsafe-inline'"] }))
  assert.equal(index.headers['x-content-type-options'], 'nosniff')
  const script = await app.inject({ method: 'GET', url: '/docs/main.js' })
  assert.deepEqual(directives(script.headers['content-security-policy']).get('script-src'), [...CSP_DIRECTIVES['script-src'] ?? []])

  // a regenerated page is hashed again
  const changed = 'window.regenerated = true'
  writeFileSync(join(site, 'index.html'), `<!doctype html><html><body><script>${changed}</script></body></html>`)
  const after = await app.inject({ method: 'GET', url: '/docs/' })
  assert.deepEqual(directives(after.headers['content-security-policy']).get('script-src'),
    ["'self'", `'sha256-${createHash('sha256').update(changed).digest('base64')}'`])
})
