import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { loadDashboardAssets, VENDOR_FILES } from '../../../plugins/dashboard/assets.js'
import { buildTestApp } from '../../helper.js'

const build = loadDashboardAssets().build

test('GET / serves the page: no-cache, only local assets, no inline script', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  assert.equal(res.statusCode, 200)
  assert.match(String(res.headers['content-type']), /^text\/html/)
  assert.equal(res.headers['cache-control'], 'no-cache')
  const page = res.body
  assert.ok(page.includes(`/dashboard/${build}/assets/app.js`), 'the page loads this build\'s app.js')
  assert.doesNotMatch(page, /%BUILD%|%PRELOAD%/)
  // a later CSP (script-src 'self') forbids inline scripts and import maps
  for (const script of page.match(/<script\b[^>]*>/g) ?? []) assert.match(script, /\bsrc="\//, `inline script: ${script}`)
  for (const [, url] of page.matchAll(/(?:src|href)="([^"]+)"/g)) assert.match(url ?? '', /^\/(?!\/)/, `not served by doorsense: ${url}`)

  const again = await app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': String(res.headers.etag) } })
  assert.equal(again.statusCode, 304)
})

test('every file the page names is served, gzipped when asked, cached for good', async (t) => {
  const app = await buildTestApp(t)
  const page = (await app.inject({ method: 'GET', url: '/' })).body
  const urls = [...page.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map(([, url]) => url ?? '')
  assert.ok(urls.length > VENDOR_FILES.length, 'the page preloads its modules')
  for (const url of urls) {
    const res = await app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip, deflate, br' } })
    assert.equal(res.statusCode, 200, url)
    assert.equal(res.headers['content-encoding'], 'gzip', url)
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', url)
    const body = gunzipSync(res.rawPayload).toString('utf8')
    assert.doesNotMatch(body, /sourceMappingURL/, `${url} would make devtools ask for a map that is not served`)
    if (!url.endsWith('.js')) continue
    // every import must name another served file: a browser has no node_modules resolution
    // (JSDoc comments name type-only imports: not requests)
    const code = body.replace(/\/\*[\s\S]*?\*\//g, '')
    for (const [, lazy, specifier] of code.matchAll(/(?:\bfrom\s*|\bimport\s*(\()?\s*)["']([^"'\s]+)["']/g)) {
      assert.match(specifier ?? '', /^\.\.?\//, `${url} imports the bare name ${specifier}`)
      const target = new URL(specifier ?? '', `http://x${url}`).pathname
      if (lazy) assert.equal((await app.inject({ method: 'GET', url: target })).statusCode, 200, `${url} imports ${target} on demand`)
      else assert.ok(urls.includes(target), `${url} imports ${target}, which the page does not preload`)
    }
  }
  const plain = await app.inject({ method: 'GET', url: `/dashboard/${build}/vendor/hooks.js` })
  assert.equal(plain.headers['content-encoding'], undefined)
  assert.match(plain.body, /from"\.\/preact\.js"/)
})

test('another build, or a file that is not there, is a 404 that says why', async (t) => {
  const app = await buildTestApp(t)
  const stale = await app.inject({ method: 'GET', url: '/dashboard/0123456789ab/assets/app.js' })
  assert.equal(stale.statusCode, 404)
  assert.match(stale.json().message, /reload the page/)
  const missing = await app.inject({ method: 'GET', url: `/dashboard/${build}/assets/nope.js` })
  assert.equal(missing.statusCode, 404)
  // type-checker files are not served
  assert.equal((await app.inject({ method: 'GET', url: `/dashboard/${build}/assets/types.d.ts` })).statusCode, 404)
  assert.equal((await app.inject({ method: 'GET', url: `/dashboard/${build}/assets/tsconfig.json` })).statusCode, 404)
})

test('the dashboard leaves the other areas where they were and stays out of the OpenAPI document', async (t) => {
  const app = await buildTestApp(t)
  assert.equal((await app.inject({ method: 'GET', url: '/debug/get/exists' })).body, 'Success')
  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> }
  assert.equal(openapi.paths['/'], undefined)
  assert.ok(!Object.keys(openapi.paths).some((path) => path.startsWith('/dashboard')))
  assert.notEqual((await app.inject({ method: 'GET', url: '/documentation' })).statusCode, 404)
})

test('the page names where the admin token is: DATA_DIR/admin-token, nothing when ADMIN_TOKEN sets it; any path is attribute-safe', async (t) => {
  const meta = (page: string) => /<meta name="doorsense-admin-token-file" content="([^"]*)">/.exec(page)?.[1]
  // the test apps set ADMIN_TOKEN
  assert.equal(meta((await (await buildTestApp(t)).inject({ method: 'GET', url: '/' })).body), '')
  const generated = await buildTestApp(t, { ADMIN_TOKEN: '' })
  assert.equal(meta((await generated.inject({ method: 'GET', url: '/' })).body), `${generated.config.DATA_DIR}/admin-token`)
  const odd = loadDashboardAssets({ adminTokenFile: '/srv/"door"&<x>/admin-token' })
  assert.equal(meta(odd.index.body.toString('utf8')), '/srv/&quot;door&quot;&amp;&lt;x&gt;/admin-token')
  assert.equal(odd.build, build, 'the path is no part of the build id')
})

test('GET /favicon.ico is the icon, kept a day, outside the OpenAPI document', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/favicon.ico' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['content-type'], 'image/x-icon')
  assert.equal(res.headers['cache-control'], 'public, max-age=86400')
  // an ICO directory (reserved 0, type 1) of PNG images
  assert.deepEqual([...res.rawPayload.subarray(0, 4)], [0, 0, 1, 0])
  assert.ok(res.rawPayload.includes(Buffer.from('\x89PNG', 'latin1')))
  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> }
  assert.equal(openapi.paths['/favicon.ico'], undefined)
})
