import type { FastifyReply, FastifyRequest } from 'fastify'
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

/** The request-duration histogram's labels. */
type RequestLabel = 'method' | 'route' | 'status_code'

/**
 * The onResponse hook that records one route's request durations (`route`:
 * its pattern, or 'unmatched'), each method and status code's series looked
 * up once and kept: prom-client's `labels()` checks and hashes the labels on
 * every call. Synchronous, so no promise per request.
 */
function durationRecorder (histogram: Histogram<RequestLabel>, route: string): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  const observers = new Map<string, Map<number, (seconds: number) => void>>()
  return function recordDuration (request, reply, done) {
    const method = request.method
    const status = reply.statusCode
    let byStatus = observers.get(method)
    if (byStatus === undefined) observers.set(method, byStatus = new Map())
    let observe = byStatus.get(status)
    if (observe === undefined) {
      observe = histogram.labels({ method, route, status_code: status }).observe
      byStatus.set(status, observe)
    }
    observe(reply.elapsedTime / 1000)
    done()
  }
}

/** A route's hooks of one kind as an array (Fastify takes one or many). */
function hookList<T> (hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]
}

/**
 * Prometheus metrics at GET /metrics: process metrics, an HTTP request
 * histogram, and whatever the areas register. One registry per app, so tests
 * can build many apps in one process.
 *
 * The histogram is fed by a hook on each route, added as the route is
 * declared (`onRoute`), which knows its route's label: reading
 * `request.routeOptions` builds a new object on every call. Requests that
 * match no route (404, 405) are all labelled 'unmatched', so a scanner
 * cannot blow up the label set.
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
    // every route declared from here on (this plugin is registered before every area) records its own
    app.addHook('onRoute', (route) => {
      // a new array: the route's options may share theirs with another route (its HEAD twin)
      route.onResponse = [...hookList(route.onResponse), durationRecorder(requestDuration, route.url)]
    })
    // the not-found handler is no declared route: its requests are recorded here
    const recordUnmatched = durationRecorder(requestDuration, 'unmatched')
    app.addHook('onResponse', function recordUnmatchedDuration (request, reply, done) {
      if (request.is404) recordUnmatched(request, reply, done)
      else done()
    })
  }

  app.get('/metrics', {
    schema: { hide: true },
    logLevel: 'warn'
  }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}, { name: 'metrics', fastify: '5.x' })
