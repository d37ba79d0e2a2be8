import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export interface OpenApiOptions {
  version: string
}

/**
 * The OpenAPI 3 document, built by @fastify/swagger from the route schemas
 * (which come from schemas/), served at GET /openapi.json, with Swagger UI at
 * /documentation.
 */
export const openApiPlugin = fp<OpenApiOptions>(async (app, { version }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'doorsense',
        description: 'Wi-Fi CSI door-sensing backend. Legacy routes keep the 2021 Flask contract.',
        version
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          device: { type: 'http', scheme: 'bearer', description: 'DEVICE_TOKEN (only when configured)' }
        }
      },
      tags: [
        { name: 'debug', description: 'liveness, versions, logging, redeploy' },
        { name: 'rpi-servers', description: 'Raspberry Pi registry and frame ingest' },
        { name: 'training', description: 'samples, training, model versions' },
        { name: 'ml', description: 'inference and door state' }
      ]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/documentation' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'openapi', fastify: '5.x' })
