import fp from 'fastify-plugin'
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry: areas add their own metrics to it. */
    metrics: Registry
    /** The `device` label of per-device series, bounded (METRICS_MAX_DEVICES). */
    deviceLabels: DeviceLabels
  }
}

/** The `device` label every device past the bound shares. */
export const OTHER_DEVICES = 'other'

/**
 * The `device` label of per-device series: the first `max` devices seen get
 * their own, every later one counts under {@link OTHER_DEVICES}. Any host on
 * the LAN can invent device IDs (up to 32,768), and each label value is a
 * series Prometheus keeps.
 */
export class DeviceLabels {
  readonly max: number
  readonly #admitted = new Set<number>()

  constructor (max: number) {
    this.max = max
  }

  /** The label of `device`'s series. */
  of (device: number): string {
    if (this.#admitted.has(device)) return String(device)
    if (this.#admitted.size >= this.max) return OTHER_DEVICES
    this.#admitted.add(device)
    return String(device)
  }
}

/**
 * Prometheus metrics at GET /metrics: process metrics, an HTTP request
 * histogram, and whatever the areas register. One registry per app, so tests
 * can build many apps in one process.
 */
export const metricsPlugin = fp<{ maxDevices?: number, requestDurations?: boolean }>(async (app, { maxDevices = 256, requestDurations = true }) => {
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
  app.decorate('deviceLabels', new DeviceLabels(maxDevices))

  // (left out only by bench/overhead.bench.ts, to measure what it costs)
  if (requestDurations) {
    app.addHook('onResponse', async (request, reply) => {
      // the route pattern, not the URL, keeps the label set small
      const route = request.routeOptions.url ?? 'unmatched'
      requestDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    })
  }

  app.get('/metrics', {
    schema: { hide: true },
    logLevel: 'warn'
  }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}, { name: 'metrics', fastify: '5.x' })
