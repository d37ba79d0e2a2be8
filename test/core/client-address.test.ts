import { test } from 'node:test'
import assert from 'node:assert/strict'
import { forwardedClientAddress } from '../../core/client-address.js'
import { buildTestApp } from '../helper.js'

interface ListedPi { addr: string, id: number }

test('TRUST_PROXY=true: a forwarded address that is not an IP address is not stored; the proxy\'s is', async (t) => {
  const app = await buildTestApp(t, { TRUST_PROXY: 'true' })
  const keepAlive = async (id: number, forwardedFor: string): Promise<void> => {
    const response = await app.inject({
      method: 'POST',
      url: '/server/post/keep_alive',
      remoteAddress: '10.0.0.2',
      headers: { 'x-forwarded-for': forwardedFor },
      payload: { NAME: `pi-${id}`, ID: id }
    })
    assert.equal(response.statusCode, 200, response.body)
  }
  await keepAlive(1, '<script>alert(1)</script>')
  await keepAlive(2, '192.0.2.7')
  await keepAlive(3, '2001:db8::7, 192.0.2.8')
  await keepAlive(4, '192.0.2.9, not-an-address')
  await keepAlive(5, '192.0.2.10:5555')
  const listed = new Map((await app.inject({ method: 'GET', url: '/app/get/list_of_servers' })).json<ListedPi[]>().map((pi) => [pi.id, pi.addr]))
  const known = new Map((await app.inject({ method: 'GET', url: '/app/get/known_servers' })).json<ListedPi[]>().map((pi) => [pi.id, pi.addr]))
  const expected = new Map([
    [1, '10.0.0.2'], // junk: the proxy (the socket's peer) is all that is known
    [2, '192.0.2.7'], // a valid forwarded address is the client's
    [3, '2001:db8::7'], // the leftmost of a valid chain
    [4, '10.0.0.2'], // the chain is believed only up to its first entry that is not an address
    [5, '10.0.0.2'] // an address with a port is not an IP address
  ])
  assert.deepEqual(listed, expected)
  assert.deepEqual(known, expected)
})

test('without TRUST_PROXY, X-Forwarded-For is ignored', async (t) => {
  const app = await buildTestApp(t)
  await app.inject({
    method: 'POST',
    url: '/server/post/keep_alive',
    remoteAddress: '10.0.0.3',
    headers: { 'x-forwarded-for': '192.0.2.7' },
    payload: { NAME: 'pi', ID: 1 }
  })
  assert.deepEqual((await app.inject({ method: 'GET', url: '/app/get/list_of_servers' })).json<ListedPi[]>().map((pi) => pi.addr), ['10.0.0.3'])
})

test('forwardedClientAddress follows the chain outward while it holds addresses', () => {
  assert.equal(forwardedClientAddress(['10.0.0.2']), '10.0.0.2')
  assert.equal(forwardedClientAddress(['10.0.0.2', '192.0.2.1', '198.51.100.1']), '198.51.100.1')
  assert.equal(forwardedClientAddress(['10.0.0.2', '192.0.2.1', 'junk', '198.51.100.1']), '192.0.2.1')
  assert.equal(forwardedClientAddress(['10.0.0.2', '']), '10.0.0.2')
  assert.equal(forwardedClientAddress([]), undefined)
})
