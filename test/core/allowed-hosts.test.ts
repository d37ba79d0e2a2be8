import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostOf, isHostAllowed, parseAllowedHosts } from '../../core/allowed-hosts.js'
import { ConfigError, loadConfig } from '../../core/config.js'
import { ADMIN, buildTestApp } from '../helper.js'

test('ALLOWED_HOSTS: a Host that is not this server\'s gets 421 on the dashboard, the API and admin routes; liveness stays open', async (t) => {
  const app = await buildTestApp(t, { ALLOWED_HOSTS: 'doorsense.lan, .home.arpa' })
  const status = async (host: string, url = '/', headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET'): Promise<number> =>
    (await app.inject({ method, url, headers: { host, ...headers } })).statusCode

  // a rebinding page's own domain
  const refused = await app.inject({ method: 'GET', url: '/', headers: { host: 'evil.example:20002' } })
  assert.equal(refused.statusCode, 421)
  assert.match(String(refused.headers['content-type']), /^application\/json/)
  assert.equal(refused.json().code, 'DS_HOST_NOT_ALLOWED')
  assert.match(refused.json().message, /host "evil\.example" is not one of ALLOWED_HOSTS/)
  assert.equal(await status('evil.example', '/doors'), 421, 'the dashboard\'s API')
  assert.equal(
    await status('evil.example', '/debug/post/enable_logging', { ...ADMIN, 'content-type': 'application/json' }, 'POST'),
    421,
    'an admin route, token or not'
  )
  assert.equal(await status('evil.example', '/no/such/route'), 421)
  assert.equal(await status('evilhome.arpa'), 421, 'a suffix is not a subdomain')
  assert.equal(await status('doorsense.lan.evil.example'), 421)

  // the listed names (any case, any port, a trailing dot), the domain of a leading-dot entry and every name under it
  for (const host of ['doorsense.lan', 'DoorSense.LAN:20002', 'doorsense.lan.', 'home.arpa', 'pi.home.arpa:8080']) {
    assert.equal(await status(host), 200, host)
  }
  // addresses and localhost always pass: a rebinding attack needs a name of its own
  for (const host of ['192.168.1.10:20002', '127.0.0.1', '[::1]:20002', 'localhost:20002', 'dash.localhost']) {
    assert.equal(await status(host), 200, host)
  }
  // liveness answers under any name: health checks keep working
  assert.equal(await status('evil.example', '/debug/get/exists'), 200)
})

test('ALLOWED_HOSTS unset: any Host is served (the default); behind a trusted proxy X-Forwarded-Host must be allowed too', async (t) => {
  const open = await buildTestApp(t)
  assert.equal((await open.inject({ method: 'GET', url: '/doors', headers: { host: 'evil.example' } })).statusCode, 200)

  const proxied = await buildTestApp(t, { ALLOWED_HOSTS: 'doorsense.lan', TRUST_PROXY: 'true' })
  const status = async (headers: Record<string, string>): Promise<number> => (await proxied.inject({ method: 'GET', url: '/doors', headers })).statusCode
  assert.equal(await status({ host: '127.0.0.1:20002', 'x-forwarded-host': 'doorsense.lan' }), 200)
  assert.equal(await status({ host: '127.0.0.1:20002', 'x-forwarded-host': 'evil.example' }), 421)
  assert.equal(await status({ host: 'evil.example', 'x-forwarded-host': 'doorsense.lan' }), 421, 'a forwarded name does not excuse the Host header')
})

test('the Host header\'s host part, and the matching rules', () => {
  assert.equal(hostOf('Example.LAN:20002'), 'example.lan')
  assert.equal(hostOf('[::1]:20002'), '::1')
  assert.equal(hostOf('fe80::1'), 'fe80::1')
  assert.equal(hostOf('10.0.0.1'), '10.0.0.1')
  assert.deepEqual(parseAllowedHosts(' a.lan ,B.lan,, .c.lan '), ['a.lan', 'b.lan', '.c.lan'])
  const allowed = ['a.lan', '.c.lan']
  assert.equal(isHostAllowed('a.lan', allowed), true)
  assert.equal(isHostAllowed('x.a.lan', allowed), false)
  assert.equal(isHostAllowed('c.lan', allowed), true)
  assert.equal(isHostAllowed('x.y.c.lan', allowed), true)
  assert.equal(isHostAllowed('xc.lan', allowed), false)
  assert.equal(isHostAllowed('10.1.2.3', []), true)
  assert.equal(isHostAllowed('localhost', []), true)
  assert.equal(isHostAllowed('anything', []), false)
  // a list that is not host names stops start-up, naming the variable
  assert.throws(() => loadConfig({ ALLOWED_HOSTS: 'a.lan; rm -rf /' }), (err: unknown) => err instanceof ConfigError && /ALLOWED_HOSTS/.test(err.message))
})
