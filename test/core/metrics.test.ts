import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Histogram, Registry } from 'prom-client'
import { DURATION_BUCKETS, RequestDurations } from '../../core/metrics.js'
import { buildTestApp } from '../helper.js'

/** The value of one sample line `name{labels} value` in a Prometheus text page, or undefined. */
function sample (page: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of page.split('\n')) {
    if (!line.startsWith(name + '{')) continue
    const labelText = line.slice(name.length + 1, line.lastIndexOf('}'))
    const matches = Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))
    if (matches) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

test('GET /metrics answers the Prometheus text format with the request histogram and process metrics', async (t) => {
  const app = await buildTestApp(t)
  await app.inject({ method: 'GET', url: '/debug/get/time' })
  await app.inject({ method: 'GET', url: '/debug/get/time' })
  await app.inject({ method: 'GET', url: '/no/such/route/42' })
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  const page = response.body
  assert.match(page, /# TYPE http_request_duration_seconds histogram/)
  assert.equal(sample(page, 'http_request_duration_seconds_count', { method: 'GET', route: '/debug/get/time', status_code: '200' }), 2)
  // unknown URLs share one label value, so a scanner cannot blow up the label set
  assert.equal(sample(page, 'http_request_duration_seconds_count', { route: 'unmatched', status_code: '404' }), 1)
  assert.ok(!page.includes('/no/such/route/42'))
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.match(page, new RegExp(`^${name} `, 'm'), `${name} missing`)
  }
})

test('two apps in one process keep separate registries', async (t) => {
  const first = await buildTestApp(t)
  const second = await buildTestApp(t)
  assert.notEqual(first.metrics, second.metrics)
  await first.inject({ method: 'GET', url: '/debug/get/time' })
  await first.inject({ method: 'GET', url: '/debug/get/time' })
  await first.inject({ method: 'GET', url: '/debug/get/time' })
  await second.inject({ method: 'GET', url: '/debug/get/time' })
  const labels = { method: 'GET', route: '/debug/get/time', status_code: '200' }
  assert.equal(sample((await first.inject('/metrics')).body, 'http_request_duration_seconds_count', labels), 3)
  assert.equal(sample((await second.inject('/metrics')).body, 'http_request_duration_seconds_count', labels), 1)
})

test('areas can add metrics to app.metrics', async (t) => {
  const app = await buildTestApp(t)
  const names = (await app.metrics.getMetricsAsJSON()).map((metric) => metric.name)
  assert.ok(names.includes('http_request_duration_seconds'))
  const page = (await app.inject('/metrics')).body
  for (const name of names) assert.match(page, new RegExp(`# TYPE ${name} `), `${name} registered but not served`)
})

test('the request histogram exports what a prom-client Histogram exports for the same observations, and resets as it does', async () => {
  const ours = new Registry()
  const theirs = new Registry()
  const durations = new RequestDurations(ours)
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [...DURATION_BUCKETS],
    registers: [theirs]
  })
  const labelSets = [
    { method: 'GET', route: '/debug/get/exists', status_code: 200 },
    { method: 'POST', route: '/debug/post/echo', status_code: 400 },
    { method: 'GET', route: 'unmatched', status_code: 404 },
    { method: 'GET', route: '/a "quoted" \\ route\nwith a newline', status_code: 200 }
  ]
  const series = labelSets.map((labels) => durations.series(labels))
  // below the first bound, on bounds, between them, past the last
  const seconds = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.02, 0.1, 0.7, 1, 2.5, 3, 60]
  const observe = (i: number, value: number) => {
    durations.observe(series[i] as NonNullable<(typeof series)[number]>, value)
    histogram.observe(labelSets[i] as NonNullable<(typeof labelSets)[number]>, value)
  }
  seconds.forEach((value, i) => observe(i % labelSets.length, value))
  observe(0, 0.0002)
  const page = await ours.metrics()
  assert.match(page, /^http_request_duration_seconds_bucket\{le="0.0005",method="GET",route="\/debug\/get\/exists",status_code="200"\} 2$/m)
  assert.equal(page, await theirs.metrics())
  const json = async (registry: Registry) => JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as unknown
  assert.deepEqual(await json(ours), await json(theirs))

  ours.resetMetrics()
  theirs.resetMetrics()
  assert.equal(await ours.metrics(), await theirs.metrics(), 'no series right after a reset')
  observe(2, 0.004)
  assert.equal(await ours.metrics(), await theirs.metrics(), 'a series observed again after a reset')
})
