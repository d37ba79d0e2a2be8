import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { buildTestApp } from '../helper.js'

test('no sampling timer throws when the process is out of file descriptors: process.memoryUsage() failing with EMFILE leaves the app serving', async (t) => {
  // what process.memoryUsage() throws once every descriptor is taken (it opens /proc/self/stat)
  const emfile = Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), {
    code: 'EMFILE',
    errno: -24,
    syscall: 'uv_resident_set_memory'
  })
  t.mock.method(process, 'memoryUsage', () => { throw emfile })
  const uncaught: unknown[] = []
  // a throw from a timer is uncaught: caught here, so the test can say so rather than the runner dying
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.after(() => { process.off('uncaughtException', onUncaught) })

  const app = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '1000' })
  await delay(2500) // two and a half sampling intervals
  assert.deepEqual(uncaught.map((err) => (err as Error).message), [], 'a timer threw')
  const response = await app.inject({ method: 'GET', url: '/debug/get/exists' })
  assert.equal(response.statusCode, 200, response.body)
  const sample = app.loadSample()
  assert.ok(sample.heapUsedBytes > 0, 'the heap is sampled without process.memoryUsage()')
  assert.ok(Number.isFinite(sample.eventLoopDelayMs))
})

test('the shed answer names the cause and carries Retry-After; shedding off (0) never sheds', async (t) => {
  const app = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '50' })
  const off = await buildTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '0' })
  const blockUntil = Date.now() + 1500
  while (Date.now() < blockUntil) {
    // a synchronous stall, as a runaway handler would cause
  }
  await delay(50)
  const shed = await app.inject({ method: 'GET', url: '/doors' })
  assert.equal(shed.statusCode, 503, shed.body)
  assert.equal(shed.headers['retry-after'], '1')
  assert.equal(shed.json().code, 'FST_UNDER_PRESSURE')
  assert.match(shed.json().message, /overloaded: its event loop lagged .* \(MAX_EVENT_LOOP_DELAY_MS is 50\)/)
  assert.equal((await off.inject({ method: 'GET', url: '/doors' })).statusCode, 200)
})
