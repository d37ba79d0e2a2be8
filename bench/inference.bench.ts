/**
 * `npm run bench -- inference`: inference at line rate, all in one run on a
 * real listening server (buildApp + listen on 127.0.0.1:0, temp DATA_DIR)
 * with a model trained on session A with the default options:
 *   1. GET /debug/get/exists req/s (the bare-route ceiling of this machine now),
 *      and POST /debug/post/echo of the inference bodies at 64 connections
 *      (the same bytes in and out, no model: what the HTTP path alone costs),
 *   2. POST /ml/post/inference with the original stringified payload at 1, 16
 *      and 64 connections: req/s, p50, p99, ratio to (1); at 64 connections
 *      against echo of the same bodies (targets: >= 0.6x its req/s, p99 <= 1.5x its p99),
 *   3. POST /ml/post/batch with 256 frames per request: frames/s (features
 *      as JSON arrays, and raw Pi frames),
 *   4. in-process app.model.predict on batches of 1, 64, 256, 2048: frames/s,
 *   5. RSS before and after 60 s of load.
 * The load comes from autocannon in a child process (this same file, forked),
 * so the client never shares the server's event loop or its RSS. Latency
 * percentiles are computed from every response's own time (autocannon's
 * histogram rounds to whole milliseconds).
 *
 * BENCH_SECONDS (default 10) sets each HTTP run's length, BENCH_SOAK_SECONDS
 * (default 60) the RSS run's. Request logging is off (LOG_LEVEL=warn), as
 * each logged request would cost more than its inference.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildApp, type App } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { ForkedClient, serveJobs } from './forked-client.js'
import { batchStats } from './lib/batch-stats.js'
import type { BodySpec } from './lib/bodies.js'
import { round, verdict } from './lib/format.js'
import { readSessionA } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'
import { performRouteLoad, type RouteLoadJob, type RouteLoadResult } from './lib/route-load.js'

const ROLE_ENV = 'DOORSENSE_BENCH_LOAD_CLIENT'
const FRAMES_PER_BATCH = 256

// ---------------------------------------------------------------- client side

serveJobs<RouteLoadJob, RouteLoadResult>(ROLE_ENV, performRouteLoad)

// ---------------------------------------------------------------- server side

/** The bodies of each run: single frames of session A for the global model (ID 1), batches of 256 for ID 2. */
const BODIES = {
  none: { kind: 'none' },
  inference: { kind: 'inference-string', device: 1 },
  batchFeatures: { kind: 'features', device: 2, frames: FRAMES_PER_BATCH },
  batchRawPi: { kind: 'raw-pi', device: 2, frames: FRAMES_PER_BATCH }
} satisfies Record<string, BodySpec>

/** The load client: this file forked. */
class LoadClient extends ForkedClient<RouteLoadJob, RouteLoadResult> {
  constructor () {
    super(import.meta.url, ROLE_ENV, 'load client')
  }
}

/** frames/s of app.model.predict on batches of `size`, over about `seconds`. */
function predictRate (app: App, frames: Float32Array[], size: number, seconds: number): { framesPerS: number, msPerCall: number } {
  const batch = Array.from({ length: size }, (_, i) => frames[i % frames.length])
  for (let i = 0; i < 20; i++) app.model.predict(batch) // warm-up
  let calls = 0
  const started = performance.now()
  let elapsed = 0
  while (elapsed < seconds * 1000) {
    app.model.predict(batch)
    calls++
    elapsed = performance.now() - started
  }
  return { framesPerS: calls * size / (elapsed / 1000), msPerCall: elapsed / calls }
}

/** A full garbage collection on demand (without --expose-gc on the command line), so RSS and heap are read settled. */
function collectGarbage (): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

const mib = (bytes: number) => round(bytes / 1024 ** 2, 1)

export default async function inferenceBench (): Promise<BenchReport> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10)
  const soakSeconds = Number(process.env.BENCH_SOAK_SECONDS ?? 60)
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-bench-inference-'))
  const app = await buildApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'warn', LOG_TO_FILE: 'false', ADMIN_TOKEN: 'bench-admin-token-0123456789', PORT: '0' }))
  const client = new LoadClient()
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

    // the model: session A, default training options, through app.model (the server's own code path)
    const rows = readSessionA()
    const trainingStarted = performance.now()
    await app.model.startTraining({ kind: 'csi', features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) })
    await app.model.waitForTraining()
    const trainingSeconds = (performance.now() - trainingStarted) / 1000
    const model = app.model.active
    if (!model) throw new Error(`training failed: ${app.model.lastFailure?.message}`)
    console.error(
      `model ${model.version} trained on session A in ${trainingSeconds.toFixed(1)} s (accuracy ${model.accuracy}), backend ${app.model.backend.backend}`
    )

    const load = async (name: string, job: Omit<RouteLoadJob, 'url' | 'seconds'> & { seconds?: number }) => {
      console.error(`${name}: ${job.connections} connection(s), ${job.seconds ?? seconds} s …`)
      const before = await batchStats(app)
      const cpuBefore = process.cpuUsage()
      const result = await client.run({ url, seconds, ...job })
      const cpu = process.cpuUsage(cpuBefore)
      const after = await batchStats(app)
      const calls = after.calls - before.calls
      // the server's own CPU time per answered request: comparable between runs even on a busy machine
      return {
        ...result,
        meanBatch: calls ? (after.frames - before.frames) / calls : 0,
        cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, result.ok)
      }
    }

    // warm-up: JIT the routes and the client
    await client.run({ url, path: '/debug/get/exists', body: BODIES.none, connections: 8, seconds: 2 })
    await client.run({ url, path: '/ml/post/inference', body: BODIES.inference, connections: 16, seconds: 2 })

    const exists = await load('exists', { path: '/debug/get/exists', body: BODIES.none, connections: 64 })
    await client.run({ url, path: '/debug/post/echo', body: BODIES.inference, connections: 16, seconds: 2 })
    const inference: Record<number, Awaited<ReturnType<typeof load>>> = {}
    for (const connections of [1, 16]) inference[connections] = await load('inference', { path: '/ml/post/inference', body: BODIES.inference, connections })
    // echo right before inference at 64 connections, so the two see the machine alike
    const echo = await load('echo (inference bodies)', { path: '/debug/post/echo', body: BODIES.inference, connections: 64 })
    inference[64] = await load('inference', { path: '/ml/post/inference', body: BODIES.inference, connections: 64 })
    const batchFeatures = await load('batch (features)', { path: '/ml/post/batch', body: BODIES.batchFeatures, connections: 8 })
    const batchRawPi = await load('batch (raw Pi)', { path: '/ml/post/batch', body: BODIES.batchRawPi, connections: 8 })

    const frames = rows.map((row) => row.features)
    const inProcess: Record<number, ReturnType<typeof predictRate>> = {}
    for (const size of [1, 64, 256, 2048]) inProcess[size] = predictRate(app, frames, size, 2)

    // RSS: settle, then 60 s of single-frame load at 16 connections, sampled (after a full GC) every 10 s, settle again
    const settle = async () => {
      collectGarbage()
      await new Promise((resolve) => setTimeout(resolve, 1000))
      collectGarbage()
      return process.memoryUsage()
    }
    const rssBefore = await settle()
    const rssSamples: Array<{ second: number, rssMiB: number, heapUsedMiB: number }> = []
    const soakStarted = performance.now()
    const sampler = setInterval(() => {
      collectGarbage()
      const memory = process.memoryUsage()
      rssSamples.push({ second: Math.round((performance.now() - soakStarted) / 1000), rssMiB: mib(memory.rss), heapUsedMiB: mib(memory.heapUsed) })
    }, 10_000)
    const soak = await load('RSS soak', { path: '/ml/post/inference', body: BODIES.inference, connections: 16, seconds: soakSeconds })
      .finally(() => clearInterval(sampler))
    const rssAfter = await settle()

    const ceiling = exists.reqPerS
    const table: BenchReport['table'] = [
      {
        run: '(1) GET /debug/get/exists',
        connections: 64,
        'req/s': round(exists.reqPerS),
        'frames/s': '',
        'p50 ms': round(exists.p50, 2),
        'p99 ms': round(exists.p99, 2),
        'vs (1)': 1,
        'vs echo': '',
        'mean batch': '',
        'server CPU µs/req': round(exists.cpuUsPerRequest),
        errors: exists.errors + exists.non2xx
      },
      {
        run: '(1) POST /debug/post/echo, the inference bodies',
        connections: 64,
        'req/s': round(echo.reqPerS),
        'frames/s': '',
        'p50 ms': round(echo.p50, 2),
        'p99 ms': round(echo.p99, 2),
        'vs (1)': round(echo.reqPerS / exists.reqPerS, 2),
        'vs echo': 1,
        'mean batch': '',
        'server CPU µs/req': round(echo.cpuUsPerRequest),
        errors: echo.errors + echo.non2xx
      }
    ]
    for (const connections of [1, 16, 64]) {
      const run = inference[connections]
      table.push({
        run: '(2) POST /ml/post/inference, stringified payload',
        connections,
        'req/s': round(run.reqPerS),
        'frames/s': round(run.reqPerS),
        'p50 ms': round(run.p50, 2),
        'p99 ms': round(run.p99, 2),
        'vs (1)': round(run.reqPerS / ceiling, 2),
        'vs echo': connections === 64 ? `${round(run.reqPerS / echo.reqPerS, 2)} (p99 ${round(run.p99 / echo.p99, 2)}×)` : '',
        'mean batch': round(run.meanBatch, 1),
        'server CPU µs/req': round(run.cpuUsPerRequest),
        errors: run.errors + run.non2xx
      })
    }
    for (const [name, run] of [
      ['(3) POST /ml/post/batch, 256 feature arrays', batchFeatures],
      ['(3) POST /ml/post/batch, 256 raw Pi frames', batchRawPi]
    ] as const) {
      table.push({
        run: name,
        connections: 8,
        'req/s': round(run.reqPerS),
        'frames/s': round(run.reqPerS * FRAMES_PER_BATCH),
        'p50 ms': round(run.p50, 2),
        'p99 ms': round(run.p99, 2),
        'vs (1)': '',
        'vs echo': '',
        'mean batch': round(run.meanBatch, 1),
        'server CPU µs/req': round(run.cpuUsPerRequest),
        errors: run.errors + run.non2xx
      })
    }
    for (const size of [1, 64, 256, 2048]) {
      table.push({
        run: `(4) app.model.predict, batch ${size}`,
        connections: '',
        'req/s': round(1000 / inProcess[size].msPerCall),
        'frames/s': round(inProcess[size].framesPerS),
        'p50 ms': round(inProcess[size].msPerCall, 3),
        'p99 ms': '',
        'vs (1)': '',
        'vs echo': '',
        'mean batch': size,
        'server CPU µs/req': round(inProcess[size].msPerCall * 1000),
        errors: 0
      })
    }
    const rssGrowth = (rssAfter.rss - rssBefore.rss) / rssBefore.rss
    table.push({
      run: `(5) RSS MiB before → after ${soakSeconds} s of load`,
      connections: 16,
      'req/s': round(soak.reqPerS),
      'frames/s': `${mib(rssBefore.rss)} → ${mib(rssAfter.rss)}`,
      'p50 ms': round(soak.p50, 2),
      'p99 ms': round(soak.p99, 2),
      'vs (1)': '',
      'vs echo': '',
      'mean batch': round(soak.meanBatch, 1),
      'server CPU µs/req': round(soak.cpuUsPerRequest),
      errors: soak.errors + soak.non2xx
    })

    const at64 = inference[64]
    const batchBest = Math.max(batchFeatures.reqPerS, batchRawPi.reqPerS) * FRAMES_PER_BATCH
    const notes = [
      `machine: load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (2 cores; the client runs on the same machine); ` +
        `model ${model.version}, ${app.model.backend.package} (${app.model.backend.backend}), trained in ${trainingSeconds.toFixed(1)} s`,
      `target (2): 64 connections >= 0.6 x echo of the same bodies: ${round(at64.reqPerS / echo.reqPerS, 2)} x ` +
        `-> ${verdict(at64.reqPerS >= 0.6 * echo.reqPerS)}; ` +
        `p99 <= 1.5 x echo's: ${round(at64.p99, 2)} vs ${round(echo.p99, 2)} ms (${round(at64.p99 / echo.p99, 2)} x) ` +
        `-> ${verdict(at64.p99 <= 1.5 * echo.p99)}; ` +
        `against liveness (1): ${round(at64.reqPerS / ceiling, 2)} x; ` +
        `p99 <= 10 ms: ${round(at64.p99, 2)} ms -> ${verdict(at64.p99 <= 10)}; ` +
        `zero errors: ${at64.errors + at64.non2xx} -> ${verdict(at64.errors + at64.non2xx === 0)}`,
      `target (3): >= 100,000 frames/s: ${round(batchBest)} -> ${verdict(batchBest >= 100_000)}`,
      `target (5): RSS flat: ${mib(rssBefore.rss)} -> ${mib(rssAfter.rss)} MiB (${(rssGrowth * 100).toFixed(1)} %), ` +
        `heap used after GC ${mib(rssBefore.heapUsed)} -> ${mib(rssAfter.heapUsed)} MiB -> ${verdict(rssGrowth < 0.1)}`,
      'RSS / heap used (MiB, after GC) during the soak: ' +
        `${rssSamples.map((sample) => `${sample.second} s ${sample.rssMiB}/${sample.heapUsedMiB}`).join(', ')}`
    ]
    return {
      name: 'inference',
      table,
      notes,
      results: {
        model: { version: model.version, accuracy: model.accuracy, trainingSeconds, backend: app.model.backend },
        seconds,
        exists,
        echo,
        inference,
        batch: { framesPerRequest: FRAMES_PER_BATCH, features: batchFeatures, rawPi: batchRawPi },
        inProcess,
        rss: { before: rssBefore, after: rssAfter, samples: rssSamples, soak, growth: rssGrowth },
        loadavg: loadavg()
      }
    }
  } finally {
    client.close()
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
