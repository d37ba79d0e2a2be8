/**
 * With TRUST_PROXY, `request.ip` is the leftmost X-Forwarded-For entry as
 * written, whatever it is: Fastify (proxy-addr) does not check that it is an
 * address. The Pi registry stores it (`addr` of /app/get/list_of_servers), so
 * a client could store any text there. Here the forwarded chain is believed
 * only while each entry is an IP address (node:net isIP): the first one that
 * is not ends it, and the last address before it (at worst the proxy's own,
 * the socket's peer) is the client's.
 */
import fp from 'fastify-plugin'
import { isIP } from 'node:net'

/**
 * The client's address from `chain`, Fastify's `request.ips`: the socket's
 * peer first, then the X-Forwarded-For entries from the nearest hop outward.
 * Undefined only when the chain is empty (the socket already gone).
 */
export function forwardedClientAddress (chain: readonly string[]): string | undefined {
  let client = chain[0]
  for (const address of chain.slice(1)) {
    if (isIP(address) === 0) break
    client = address
  }
  return client
}

/**
 * Behind a trusted proxy, makes `request.ip` {@link forwardedClientAddress}
 * before any route reads it, where the forwarded chain holds something that
 * is not an address. Without TRUST_PROXY `request.ip` is the socket's peer,
 * always an address: nothing to do.
 */
export const clientAddressPlugin = fp<{ trustProxy: boolean }>(async (app, { trustProxy }) => {
  if (!trustProxy) return
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-forwarded-for'] === undefined) return
    const chain = request.ips ?? []
    if (chain.every((address) => isIP(address) !== 0)) return
    // request.ip is a getter on Fastify's request prototype: an own property on this request shadows it
    Object.defineProperty(request, 'ip', { value: forwardedClientAddress(chain), enumerable: true })
  })
}, { name: 'client-address', fastify: '5.x' })
