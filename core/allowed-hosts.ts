/**
 * ALLOWED_HOSTS: the Host header must name this server. A web page on
 * another site can make its own domain resolve to the LAN address of
 * doorsense (DNS rebinding) and then call the dashboard's API as if it were
 * same-origin; the browser still sends that domain in Host, which is how such
 * a request is told apart and refused (421 Misdirected Request,
 * DS_HOST_NOT_ALLOWED).
 *
 * IP addresses, `localhost` and names under `.localhost` always pass: a
 * rebinding attack needs a domain name of its own, and the Pis, the watchdog
 * and curl reach the server by address. A request without Host (HTTP/1.0)
 * comes from no browser and passes too. The liveness route stays open to any
 * Host, so health checks by any name keep working.
 */
import fp from 'fastify-plugin'
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { HostNotAllowedError } from './errors.js'
import { describeValue } from '../schemas/describe.js'

/** The liveness route (also bin/lib/server-process.ts HEALTH_PATH): exempt, so health checks by any name work. */
export const LIVENESS_PATH = '/debug/get/exists'

/** Routes answered whatever the Host header says. */
export const HOST_CHECK_EXEMPT: ReadonlySet<string> = new Set([LIVENESS_PATH])

/** The names of ALLOWED_HOSTS, lower-cased; a leading dot (`.example.lan`) allows that domain and every name under it. */
export function parseAllowedHosts (list: string): string[] {
  return list.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** The host part of a Host header value, lower-cased, without port or IPv6 brackets. */
export function hostOf (header: string): string {
  const value = header.trim().toLowerCase()
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    return end < 0 ? value : value.slice(1, end)
  }
  const colon = value.indexOf(':')
  // a bare IPv6 address has several colons and no port
  return colon >= 0 && value.indexOf(':', colon + 1) < 0 ? value.slice(0, colon) : value
}

/** Whether `host` (from {@link hostOf}) may be served when ALLOWED_HOSTS lists `allowed`. */
export function isHostAllowed (host: string, allowed: readonly string[]): boolean {
  if (isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost')) return true
  const name = host.endsWith('.') ? host.slice(0, -1) : host // "example.lan." is the same name
  return allowed.some((entry) => entry.startsWith('.') ? name === entry.slice(1) || name.endsWith(entry) : name === entry)
}

export interface AllowedHostsOptions {
  /** ALLOWED_HOSTS as configured; unset = any host. */
  allowedHosts: string | undefined
  /** TRUST_PROXY: an X-Forwarded-Host, set by the proxy, must be allowed too. */
  trustProxy: boolean
}

/** The Host values a request names: its Host header and, behind a trusted proxy, X-Forwarded-Host. */
function namedHosts (request: FastifyRequest, trustProxy: boolean): string[] {
  const named: string[] = []
  const host = request.headers.host
  if (host !== undefined && host !== '') named.push(host)
  const forwarded = request.headers['x-forwarded-host']
  if (trustProxy && typeof forwarded === 'string' && forwarded !== '') named.push(...forwarded.split(','))
  return named
}

/** Refuses, with 421, a request whose Host (or forwarded host) is not allowed; does nothing while ALLOWED_HOSTS is unset. */
export const allowedHostsPlugin = fp<AllowedHostsOptions>(async (app, options) => {
  if (options.allowedHosts === undefined) return
  const allowed = parseAllowedHosts(options.allowedHosts)
  app.log.info({ allowedHosts: allowed }, 'requests must name one of ALLOWED_HOSTS (or an IP address, or localhost) in Host')
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url !== undefined && HOST_CHECK_EXEMPT.has(request.routeOptions.url)) return
    for (const header of namedHosts(request, options.trustProxy)) {
      const host = hostOf(header)
      if (!isHostAllowed(host, allowed)) {
        throw new HostNotAllowedError(`host ${describeValue(host, 80)} is not one of ALLOWED_HOSTS; ` +
          'reach this server by one of them, an IP address or localhost')
      }
    }
  })
}, { name: 'allowed-hosts', fastify: '5.x' })
