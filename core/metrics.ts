import fp from 'fastify-plugin'
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry: areas add their own metrics to it. */
    metrics: Registry
  }
}

/**
 * Prometheus metrics at GET /metrics: process metrics, an HTTP request
 * histogram, and whatever the areas register. One registry per app, so tests
 * can build many apps in one process.
 */
export const metricsPlugin = fp(async (app) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry]
  })
  app.decorate('metrics', registry)

  app.addHook('onResponse', async (request, reply) => {
    // the route pattern, not the URL, keeps the label set small
    const route = request.routeOptions.url ?? 'unmatched'
    requestDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })

  app.get('/metrics', {
    schema: { hide: true },
    logLevel: 'warn'
  }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}, { name: 'metrics', fastify: '5.x' })
