import { test } from 'node:test'
import assert from 'node:assert/strict'
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
