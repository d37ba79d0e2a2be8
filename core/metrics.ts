import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Registry, collectDefaultMetrics, type Metric, type MetricValueWithName } from 'prom-client'

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
type RequestLabels = Readonly<Record<RequestLabel, string | number>>

/** The upper bounds (seconds) of http_request_duration_seconds's buckets. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])

/** A line of the export: a bucket (with its exemplar slot, always empty here), the sum or the count. */
type ExportedValue = MetricValueWithName<RequestLabel | 'le'> & { exemplar?: null }

/** One series of {@link RequestDurations}: its labels, the count in each bucket (not cumulative; the last is above every bound), sum and count. */
export interface DurationSeries {
  readonly labels: RequestLabels
  readonly buckets: Float64Array
  sum: number
  count: number
  /** Whether it is exported (a reset takes every series out until it is observed again, as prom-client's does). */
  listed: boolean
}

/**
 * `http_request_duration_seconds`, a histogram by method, route and status
 * code, kept here instead of in a prom-client Histogram: that one checks and
 * hashes the three labels into a string on every observation, where here
 * each route's hook holds its series and an observation is a bucket search
 * and three additions. Registered in the app's registry like prom-client's
 * metrics and exported in prom-client's form (`get()`, what the registry
 * reads): test/core/metrics.test.ts compares its text with a prom-client
 * Histogram's for the same observations.
 */
export class RequestDurations {
  readonly name = 'http_request_duration_seconds'
  readonly help = 'HTTP request duration by method, route and status code'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly labelNames: readonly RequestLabel[] = ['method', 'route', 'status_code']
  readonly #bounds: readonly number[]
  #series: DurationSeries[] = []

  constructor (registry: Registry, bounds: readonly number[] = DURATION_BUCKETS) {
    this.#bounds = bounds
    registry.registerMetric(this as unknown as Metric)
  }

  /** A new series for `labels` (the caller keeps it: asking twice for the same labels makes two). */
  series (labels: RequestLabels): DurationSeries {
    return { labels, buckets: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0, listed: false }
  }

  /** Counts one request of `seconds` in `series`. */
  observe (series: DurationSeries, seconds: number): void {
    if (!series.listed) {
      series.listed = true
      this.#series.push(series)
    }
    const bounds = this.#bounds
    let bucket = 0
    while (bucket < bounds.length && seconds > (bounds[bucket] as number)) bucket++
    series.buckets[bucket]++
    series.sum += seconds
    series.count++
  }

  /** The series as prom-client's Histogram exports them: cumulative buckets (`le`, then `+Inf`), `_sum` and `_count`. */
  async get (): Promise<{ name: string, help: string, type: 'histogram', values: ExportedValue[], aggregator: 'sum' }> {
    const values: ExportedValue[] = []
    for (const { labels, buckets, sum, count } of this.#series) {
      let cumulative = 0
      this.#bounds.forEach((bound, i) => {
        cumulative += buckets[i] as number
        values.push({ labels: { le: bound, ...labels }, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null })
      })
      values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket`, exemplar: null })
      values.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** Takes every series out, zeroed, until it is observed again (prom-client's reset). */
  reset (): void {
    for (const series of this.#series) {
      series.buckets.fill(0)
      series.sum = 0
      series.count = 0
      series.listed = false
    }
    this.#series = []
  }
}

/**
 * The onResponse hook that records one route's request durations (`route`:
 * its pattern, or 'unmatched'), each method and status code's series made
 * once and kept. Synchronous, so no promise per request.
 */
function durationRecorder (durations: RequestDurations, route: string): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  const series = new Map<string, Map<number, DurationSeries>>()
  return function recordDuration (request, reply, done) {
    const method = request.method
    const status = reply.statusCode
    let byStatus = series.get(method)
    if (byStatus === undefined) series.set(method, byStatus = new Map())
    let one = byStatus.get(status)
    if (one === undefined) byStatus.set(status, one = durations.series({ method, route, status_code: status }))
    durations.observe(one, reply.elapsedTime / 1000)
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
  const requestDuration = new RequestDurations(registry)
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
