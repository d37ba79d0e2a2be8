/**
 * Load shedding: while the event loop lags (or the heap nears its limit)
 * every request is answered 503 + Retry-After at once, so a drowning server
 * sheds work instead of queueing more.
 *
 * It replaces @fastify/under-pressure, whose sampling timer calls
 * process.memoryUsage() every second whatever it is told to check; that call
 * opens /proc/self/stat, so once the process has run out of file descriptors
 * (a connection flood) it throws EMFILE from a timer, uncaught, and the server
 * exits. Here nothing sampled needs a file descriptor (the event-loop
 * histogram and V8's heap statistics), and a sample that fails anyway is
 * logged and skipped, never thrown.
 */
import fp from 'fastify-plugin'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { UnderPressureError } from './errors.js'

export interface LoadSheddingOptions {
  /** Mean event-loop delay (ms, per sample interval) above which requests are shed; 0 = no delay check. */
  maxEventLoopDelayMs: number
  /** Heap use (bytes) above which requests are shed; 0 = no heap check. */
  maxHeapUsedBytes: number
  /** How often the delay and the heap are sampled (default 1000 ms, as under-pressure did). */
  sampleIntervalMs?: number
}

/** What the last sample saw. */
export interface LoadSample {
  /** Mean event-loop delay over the last interval, ms (Infinity when the loop recorded nothing: stalled throughout). */
  eventLoopDelayMs: number
  heapUsedBytes: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The last load sample (see core/load-shedding.ts). */
    loadSample: () => LoadSample
  }
}

/** The histogram's resolution, ms: every sample carries it on top of the real delay. */
const RESOLUTION_MS = 10

/** Shapes a byte count as MiB for a message. */
function mebibytes (bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`
}

/**
 * Decorates `loadSample` and, when a limit is set, answers every request with
 * 503 (FST_UNDER_PRESSURE; the error handler adds Retry-After) while the last
 * sample is over it.
 */
export const loadSheddingPlugin = fp<LoadSheddingOptions>(async (app, options) => {
  const sampleIntervalMs = Math.max(RESOLUTION_MS, options.sampleIntervalMs ?? 1000)
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  const last: LoadSample = { eventLoopDelayMs: 0, heapUsedBytes: 0 }
  let sampleFailed = false

  const sample = (): void => {
    try {
      const meanMs = histogram.mean / 1e6
      last.eventLoopDelayMs = Number.isNaN(meanMs) ? Infinity : Math.max(0, meanMs - RESOLUTION_MS)
      histogram.reset()
      last.heapUsedBytes = getHeapStatistics().used_heap_size
      sampleFailed = false
    } catch (err) {
      // a timer that throws takes the process down: log the first failure of a run, keep the old sample
      if (!sampleFailed) app.log.warn({ err }, 'load sample failed; keeping the previous one')
      sampleFailed = true
    }
    timer.refresh()
  }
  const timer = setTimeout(sample, sampleIntervalMs)
  timer.unref()
  app.addHook('onClose', async () => {
    clearTimeout(timer)
    histogram.disable()
  })
  app.decorate('loadSample', () => ({ ...last }))

  const { maxEventLoopDelayMs, maxHeapUsedBytes } = options
  if (maxEventLoopDelayMs <= 0 && maxHeapUsedBytes <= 0) return
  // a callback hook, not an async one: two comparisons need no promise (nor its turn of the microtask queue)
  app.addHook('onRequest', function shedLoad (_request, _reply, done) {
    if (maxEventLoopDelayMs > 0 && last.eventLoopDelayMs > maxEventLoopDelayMs) {
      const delay = Number.isFinite(last.eventLoopDelayMs) ? `${Math.round(last.eventLoopDelayMs)} ms` : 'a whole second'
      done(new UnderPressureError(`the server is overloaded: its event loop lagged ${delay} (MAX_EVENT_LOOP_DELAY_MS is ${maxEventLoopDelayMs}); retry later`))
      return
    }
    if (maxHeapUsedBytes > 0 && last.heapUsedBytes > maxHeapUsedBytes) {
      done(new UnderPressureError(
        `the server is overloaded: ${mebibytes(last.heapUsedBytes)} of heap in use (limit ${mebibytes(maxHeapUsedBytes)}); retry later`))
      return
    }
    done()
  })
}, { name: 'load-shedding', fastify: '5.x' })
