import type { FastifyReply, FastifyRequest } from 'fastify'
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

/** A header's name (in helmet's case) and value. */
export type Header = readonly [name: string, value: string]

/**
 * The security headers @fastify/helmet 13 (helmet 8) sent with the options
 * this app gave it (the policy above, `X-Frame-Options: DENY`, no
 * Strict-Transport-Security), byte for byte, names in helmet's case and
 * order: what the pages carry (the dashboard, Swagger UI, the typedoc site).
 *
 * - Content-Security-Policy: {@link CSP_DIRECTIVES} (own origin only, no inline script or style, no framing);
 * - Cross-Origin-Opener-Policy `same-origin`: the page shares no browsing context group with another site's window;
 * - Cross-Origin-Resource-Policy `same-origin`: no other site may load an answer into its page (`<script>`, `<img>`, no-cors fetch),
 *   where a Spectre-style read could get at it;
 * - Origin-Agent-Cluster `?1`: the page gets its own agent cluster;
 * - Referrer-Policy `no-referrer`: doorsense's URLs never leave in a Referer;
 * - X-Content-Type-Options `nosniff`: an answer is never read as another type than it says;
 * - X-DNS-Prefetch-Control `off`: the page's links are not resolved ahead;
 * - X-Frame-Options `DENY`: no framing, for browsers without `frame-ancestors`;
 * - X-Download-Options `noopen` (Internet Explorer 8's downloads), X-Permitted-Cross-Domain-Policies `none` (Flash and Acrobat),
 *   X-XSS-Protection `0` (the XSS auditors browsers dropped): helmet's defaults for what is gone.
 *
 * No Strict-Transport-Security: doorsense speaks plain HTTP; HSTS belongs to
 * the TLS proxy in front of it, if there is one.
 */
export const SECURITY_HEADERS: readonly Header[] = Object.freeze([
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
 * The Content-Security-Policy of an API answer (JSON, text, an error, an
 * unknown URL): nothing may load and nothing may frame it. An answer is
 * never a page, so it needs no source at all — stricter than the pages'
 * policy, and a fifth of its bytes (OWASP's REST Security Cheat Sheet
 * gives the same for APIs).
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'"

/**
 * The headers of every API answer (a browser may render any of them as a
 * document, or be led to load it from another site): {@link API_CSP},
 * Cross-Origin-Resource-Policy, nosniff (a JSON or text answer is never
 * read as HTML or script) and X-Frame-Options. Not Referrer-Policy: an
 * answer that may load nothing has no request to send a Referer with.
 * Each answer's headers cost the server, the kernel and the client to write
 * and read: these 168 bytes against the 358 of the five before made
 * liveness and echo 5–6 % faster (bench/overhead.bench.ts; the pages'
 * are 544).
 */
export const ANSWER_SECURITY_HEADERS: readonly Header[] = Object.freeze([
  ['Content-Security-Policy', API_CSP],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY']
] as const)

/** Sets `headers` on the raw response (as helmet did: a route may still replace one). */
function setHeaders (headers: readonly Header[]) {
  return function (_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    const raw = reply.raw
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as Header
      raw.setHeader(header[0], header[1])
    }
    done()
  }
}

/**
 * The security headers: {@link ANSWER_SECURITY_HEADERS} on every answer,
 * errors and unknown URLs included, from the first onRequest hook (before
 * any route, refusal or error handler runs); on the pages, the routes the
 * OpenAPI document hides (the dashboard, Swagger UI, the typedoc site, and
 * /metrics and /openapi.json as before), every one of
 * {@link SECURITY_HEADERS} instead (their policy replacing the API's), by a
 * hook of their own added as each is declared.
 *
 * Set on the raw response, as helmet did, so that a route may still replace
 * one (the typedoc pages' policy, plugins/docs; Swagger UI's, core/openapi.ts).
 * It replaces @fastify/helmet, which built helmet's whole middleware again
 * for every request (parsing and checking the policy's directives each
 * time): about a third of what a liveness probe cost (bench/overhead.bench.ts).
 */
export const securityHeadersPlugin = fp(async (app) => {
  app.addHook('onRequest', setHeaders(ANSWER_SECURITY_HEADERS))
  const pageHeaders = setHeaders(SECURITY_HEADERS)
  app.addHook('onRoute', (route) => {
    if ((route.schema as { hide?: unknown } | undefined)?.hide !== true) return
    // a new array: the route's options may share theirs with another route (its HEAD twin)
    const onRequest = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    route.onRequest = [pageHeaders, ...onRequest]
  })
}, { name: 'security-headers', fastify: '5.x' })
