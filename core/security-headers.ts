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
 * The security headers of every answer, as @fastify/helmet 13 (helmet 8)
 * sent them with the options this app gave it (the policy above, `X-Frame-Options: DENY`,
 * no Strict-Transport-Security), byte for byte, names in helmet's case:
 *
 * - Content-Security-Policy: {@link CSP_DIRECTIVES} (own origin only, no inline script or style, no framing);
 * - Cross-Origin-Opener-Policy `same-origin`: a page of doorsense shares no browsing context group with another site's window;
 * - Cross-Origin-Resource-Policy `same-origin`: no other site may embed an answer (a JSON body as `<script>` or `<img>`, Spectre-style reads);
 * - Origin-Agent-Cluster `?1`: the page gets its own agent cluster (process isolation where the browser can);
 * - Referrer-Policy `no-referrer`: the dashboard's URLs never leave in a Referer;
 * - X-Content-Type-Options `nosniff`: an answer is never read as another type than it says (a JSON or text answer as HTML or script);
 * - X-DNS-Prefetch-Control `off`, X-Download-Options `noopen`, X-Permitted-Cross-Domain-Policies `none`,
 *   X-XSS-Protection `0`: helmet's defaults for older browsers and plug-ins;
 * - X-Frame-Options `DENY`: no framing, for browsers without `frame-ancestors`.
 *
 * No Strict-Transport-Security: doorsense speaks plain HTTP; HSTS belongs to
 * the TLS proxy in front of it, if there is one.
 */
export const SECURITY_HEADERS: ReadonlyArray<readonly [name: string, value: string]> = Object.freeze([
  ['Content-Security-Policy', Object.entries(CSP_DIRECTIVES).map(([name, sources]) => [name, ...sources].join(' ')).join(';')],
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Origin-Agent-Cluster', '?1'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Frame-Options', 'DENY'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0']
] as const)

/**
 * Sets {@link SECURITY_HEADERS} on every answer, pages and JSON alike, errors
 * included: in the first onRequest hook, before any route or error handler
 * runs, on the raw response as helmet did, so that a route may still replace
 * one (the typedoc pages' policy, plugins/docs; Swagger UI's, core/openapi.ts).
 *
 * It replaces @fastify/helmet, which built helmet's whole middleware again
 * for every request (parsing and checking the policy's directives each
 * time) in two hooks: about a third of what a liveness probe cost
 * (bench/overhead.bench.ts). The values are fixed, so they are written
 * here once.
 */
export const securityHeadersPlugin = fp(async (app) => {
  app.addHook('onRequest', function securityHeaders (_request, reply, done) {
    const raw = reply.raw
    for (let i = 0; i < SECURITY_HEADERS.length; i++) {
      const header = SECURITY_HEADERS[i] as readonly [string, string]
      raw.setHeader(header[0], header[1])
    }
    done()
  })
}, { name: 'security-headers', fastify: '5.x' })
