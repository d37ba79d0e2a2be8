import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { contentSecurityPolicy } from './security-headers.js'
import { HOST_CHECK_EXEMPT } from './allowed-hosts.js'
import { ErrorResponse } from '../schemas/common.js'

export interface OpenApiOptions {
  version: string
}

/** The document's OpenAPI version: its Schema Objects are the 3.0 dialect (JSON Schema draft 4 bounds). */
export const OPENAPI_VERSION = '3.0.3'

type JsonNode = unknown

/**
 * Rewrites the schemas of a generated document into OpenAPI 3.0's dialect
 * where TypeBox and @fastify/swagger leave JSON Schema draft 7: a numeric
 * `exclusiveMinimum: n` (draft 6+) becomes `minimum: n, exclusiveMinimum:
 * true` (3.0.3 allows only the boolean form), and `exclusiveMaximum` alike.
 * The routes still validate with the draft-7 schemas; only the document
 * changes. Returns a new value, the input is left as it was.
 */
export function toOpenApi30Dialect<T> (node: T): T {
  return rewrite(node) as T
}

function rewrite (node: JsonNode): JsonNode {
  if (Array.isArray(node)) return node.map(rewrite)
  if (node === null || typeof node !== 'object') return node
  const out: Record<string, JsonNode> = {}
  for (const [key, value] of Object.entries(node)) out[key] = rewrite(value)
  for (const [exclusive, inclusive, tighter] of [['exclusiveMinimum', 'minimum', Math.max], ['exclusiveMaximum', 'maximum', Math.min]] as const) {
    const bound = out[exclusive]
    if (typeof bound !== 'number') continue
    const other = out[inclusive]
    // with both bounds given, the stricter one holds; an inclusive bound that is stricter stays inclusive
    if (typeof other === 'number' && tighter(other, bound) === other && other !== bound) {
      delete out[exclusive]
    } else {
      out[inclusive] = bound
      out[exclusive] = true
    }
  }
  return out
}

/** The methods of a path item that are operations (a path item also holds `parameters`, `summary`, …). */
const OPERATION_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

/** The Retry-After header of a 503, as the document lists it. */
const RETRY_AFTER_HEADER = { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer', minimum: 0 } } }

/** What any route may answer, whatever its own schema lists: load shedding and, with ALLOWED_HOSTS, a refused Host. */
const EVERY_ROUTE_RESPONSES = {
  503: 'Service Unavailable: the server is shedding load (its event loop lags more than MAX_EVENT_LOOP_DELAY_MS), or this route cannot serve now ' +
    '(no model yet, a full queue, too many event streams); nothing was done, retry after Retry-After seconds',
  421: 'Misdirected Request (DS_HOST_NOT_ALLOWED): ALLOWED_HOSTS is set and the Host header names none of its hosts, an IP address or localhost'
} as const

/**
 * Lists, on every operation of a generated document, the answers the app
 * gives before any route runs: 503 with Retry-After (load shedding,
 * core/load-shedding.ts) and 421 (core/allowed-hosts.ts; not on the routes
 * exempt from it). A route's own content for them is kept, its description
 * replaced by one that says what they mean. Returns a new value.
 */
export function withEveryRouteResponses<T> (document: T): T {
  type Operation = { responses?: Record<string, { description?: string, content?: unknown, headers?: unknown }> }
  const copy = structuredClone(document) as { paths?: Record<string, Record<string, Operation>> }
  const errorContent = { 'application/json': { schema: JSON.parse(JSON.stringify(ErrorResponse)) as unknown } }
  for (const [path, item] of Object.entries(copy.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!OPERATION_METHODS.has(method)) continue
      const responses = operation.responses ??= {}
      responses['503'] = { description: EVERY_ROUTE_RESPONSES[503], headers: RETRY_AFTER_HEADER, content: responses['503']?.content ?? errorContent }
      if (!HOST_CHECK_EXEMPT.has(path)) responses['421'] = { description: EVERY_ROUTE_RESPONSES[421], content: responses['421']?.content ?? errorContent }
    }
  }
  return copy as T
}

/**
 * The OpenAPI 3 document, built by @fastify/swagger from the route schemas
 * (which come from schemas/), served at GET /openapi.json, with Swagger UI at
 * /documentation.
 */
export const openApiPlugin = fp<OpenApiOptions>(async (app, { version }) => {
  await app.register(swagger, {
    openapi: {
      openapi: OPENAPI_VERSION,
      info: {
        title: 'doorsense',
        description: 'Wi-Fi CSI door-sensing backend. Legacy routes keep the 2021 Flask contract. ' +
          'Every request body may be sent compressed (`Content-Encoding: gzip`, `deflate` or `br`); answers to routes with a body say so in `Accept-Encoding`.',
        version
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          device: {
            type: 'http',
            scheme: 'bearer',
            description: 'DEVICE_TOKEN: required on the device routes once it is configured (the admin token passes too); ' +
              'while it is unset they are open, which their `{}` security requirement says'
          }
        }
      },
      tags: [
        { name: 'debug', description: 'liveness, versions, logging, redeploy' },
        { name: 'rpi-servers', description: 'Raspberry Pi registry and frame ingest' },
        { name: 'training', description: 'samples, training, model versions' },
        { name: 'ml', description: 'inference and door state' }
      ]
    },
    transformObject: (document) => withEveryRouteResponses(toOpenApi30Dialect('openapiObject' in document ? document.openapiObject : document.swaggerObject))
  })
  await app.register(swaggerUi, {
    routePrefix: '/documentation',
    // without the top bar (a URL box and the Swagger logo, whose SVG carries an inline <style>
    // that the Content-Security-Policy refuses): this server documents one API
    uiConfig: { layout: 'BaseLayout' },
    // Swagger UI's stylesheet draws its icons as data: images; only its pages allow them
    transformStaticCSP: () => contentSecurityPolicy({ 'img-src': ['data:'] })
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'openapi', fastify: '5.x' })
