import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { contentSecurityPolicy } from './security-headers.js'

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
        description: 'Wi-Fi CSI door-sensing backend. Legacy routes keep the 2021 Flask contract.',
        version
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          device: { type: 'http', scheme: 'bearer', description: 'DEVICE_TOKEN: required on the device routes once it is configured (the admin token passes too); while it is unset they are open, which their `{}` security requirement says' }
        }
      },
      tags: [
        { name: 'debug', description: 'liveness, versions, logging, redeploy' },
        { name: 'rpi-servers', description: 'Raspberry Pi registry and frame ingest' },
        { name: 'training', description: 'samples, training, model versions' },
        { name: 'ml', description: 'inference and door state' }
      ]
    },
    transformObject: (document) => toOpenApi30Dialect('openapiObject' in document ? document.openapiObject : document.swaggerObject)
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
