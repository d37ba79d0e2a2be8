import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

/** A Content-Security-Policy as directive name to its sources. */
export type CspDirectives = Readonly<Record<string, readonly string[]>>

/**
 * The Content-Security-Policy of every answer: doorsense serves everything its
 * pages use itself (no CDN), so its own origin is the only source, with no
 * inline script, no inline style and no framing by other sites. No `upgrade-insecure-requests`:
 * on a LAN the server is plain HTTP, and upgrading its own requests to HTTPS
 * would break every page.
 */
export const CSP_DIRECTIVES: CspDirectives = Object.freeze({
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'"],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"]
})

/**
 * The header value of {@link CSP_DIRECTIVES} with `extra` sources added to
 * their directives, for a page that needs one more (the typedoc site's inline
 * script, allowed by its hash).
 */
export function contentSecurityPolicy (extra: CspDirectives = {}): string {
  const names = new Set([...Object.keys(CSP_DIRECTIVES), ...Object.keys(extra)])
  return [...names].map((name) => [name, ...(CSP_DIRECTIVES[name] ?? []), ...(extra[name] ?? [])].join(' ')).join('; ')
}

/**
 * Security headers on every answer, pages and JSON alike (@fastify/helmet):
 * the policy above, `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
 * no referrer, same-origin opener and resource policies. No
 * Strict-Transport-Security: doorsense speaks plain HTTP; HSTS belongs to the
 * TLS proxy in front of it, if there is one.
 */
export const securityHeadersPlugin = fp(async (app) => {
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: Object.fromEntries(Object.entries(CSP_DIRECTIVES).map(([name, sources]) => [name, [...sources]]))
    },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: false
  })
}, { name: 'security-headers', fastify: '5.x' })
