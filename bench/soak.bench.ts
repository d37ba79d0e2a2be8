/**
 * `npm run bench -- soak`: servers in a child process (`bin/serve.ts`, free
 * loopback port, temp DATA_DIR with session A's model trained and active by
 * the CLI), loaded by autocannon in a forked client process.
 *
 * 1. Before and after, in one run: two servers up at once, one with the
 *    previous design (REGISTRY_FLUSH_MS=0: every keep-alive upserted at once;
 *    WAL_CHECKPOINT_MS=0: SQLite checkpoints inside the commit that fills the
 *    log; INFER_GATHER=always: every frame waits for the end of the turn to
 *    share a model call), one with this design (the defaults), the runs alternating between
 *    them SOAK_COMPARE_REPEATS (2) times: the soak's whole mix below, SSE
 *    subscribers included, for SOAK_COMPARE_SECONDS (60; 0 = skip part 1);
 *    then each of keep-alive, frames (batches of 20 raw Pi frames) and
 *    inference alone at 64 connections for SOAK_ALONE_SECONDS (20), right
 *    after echo of exactly its bodies alone: p99 / echo p99, the max, the
 *    server's event-loop delay (its own nodejs_eventloop_lag metrics) and
 *    CPU per request.
 * 2. The soak: SOAK_MINUTES (default 10) of this mix at once, 64 connections,
 *    while SOAK_SSE (default 400) subscribers stay connected (half on
 *    /doors/stream, half on /ml/get/door_state/stream):
 *
 *      POST /ml/post/inference      12   stringified session A rows, 16 devices
 *      POST /server/post/frames     10   batches of 20 raw Pi frames, 16 devices
 *      POST /server/post/keep_alive 12   {NAME, ID} of the same 16 devices
 *      POST /debug/post/echo        6+6+6  exactly the bodies of the three above
 *      GET  /doors, /ml/get/door_state  4 + 4
 *      GET  /debug/get/exists        4   liveness
 *
 *    Each route is its own autocannon instance, all at once, so each ratio
 *    route p99 / echo p99 of the same body is taken at the same moments (the
 *    GETs against /debug/get/exists). Reported per route: requests, errors,
 *    non-2xx, p50/p99/max (and p99 per minute); of the server (/proc/<pid>):
 *    RSS, open file descriptors, threads and CPU at the start, every minute
 *    and at the end.
 *
 * Target: no route's p99 above 1.5× echo's. Latencies are each response's own
 * time; request logging is off (LOG_LEVEL=warn).
 */
import { Agent, get, type ClientRequest } from 'node:http'
import { rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import {
  checkpointsOf, loopDelayOf, scrapeMetrics, startChildServer, trainedDataDir,
  type Checkpoints, type ChildServer, type LoopDelay, type ProcessSample
} from './child-server.js'
import { ForkedClient, serveJobs } from './forked-client.js'
import { DISTINCT_BODIES, frameBatches, framesBody, inferenceBodies, keepAliveBody } from './lib/bodies.js'
import { round, verdict } from './lib/format.js'
import { latencySummary, type LatencySummary } from './lib/latency.js'
import { runLoad, type LoadOutcome } from './lib/load.js'
import { median } from './lib/quantile.js'
import { rawPiLines } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const ROLE_ENV = 'DOORSENSE_BENCH_SOAK_CLIENT'
const DEVICES = 16
const FRAMES_PER_BATCH = 20
const RATIO_TARGET = 1.5
/**
 * The environment that brings back the design before issue 15: write-through
 * registry, checkpoints inside commits, every frame gathered for a shared model call.
 */
const PREVIOUS_DESIGN = { REGISTRY_FLUSH_MS: '0', WAL_CHECKPOINT_MS: '0', INFER_GATHER: 'always' }

/** One route's share of the load. */
interface RouteLoad {
  name: string
  path: string
  connections: number
  /** POST bodies (JSON text) cycled through; none = GET. */
  bodies?: string[]
  /** The route whose p99 this one is held against. */
  baseline?: string
}

interface SoakJob {
  url: string
  seconds: number
  routes: RouteLoad[]
}

/** A route's run: autocannon's counts and the latency summary, of the whole run and of each minute. */
interface RouteStats extends Omit<LoadOutcome, 'times'>, LatencySummary {
  /** The same figures per minute of the run. */
  perMinute: LatencySummary[]
}

// ---------------------------------------------------------------- client side

/**
 * One route's load; resolves with a summariser, to be called once every
 * route has finished: sorting a route's latencies while others still run
 * would hold up this process's event loop and inflate their times.
 */
async function runRoute (job: SoakJob, route: RouteLoad, started: number): Promise<() => RouteStats> {
  const minutes: number[][] = []
  const { times, ...counts } = await runLoad({
    url: job.url,
    path: route.path,
    connections: route.connections,
    seconds: job.seconds,
    bodies: route.bodies
  }, (ms) => {
    ;(minutes[Math.floor((performance.now() - started) / 60_000)] ??= []).push(ms)
  })
  return () => ({
    ...latencySummary(times),
    ...counts,
    // a last bucket of a few ms past the end says nothing
    perMinute: minutes.filter((bucket) => bucket !== undefined && bucket.length > 100).map((bucket) => latencySummary(bucket))
  })
}

serveJobs<SoakJob, Record<string, RouteStats>>(ROLE_ENV, async (job) => {
  const started = performance.now()
  const entries = await Promise.all(job.routes.map(async (route) => [route.name, await runRoute(job, route, started)] as const))
  // summarised only once every route has finished (see runRoute)
  return Object.fromEntries(entries.map(([name, summarise]) => [name, summarise()]))
})

// ---------------------------------------------------------------- server side

/** The load client: this file forked. */
class LoadClient extends ForkedClient<SoakJob, Record<string, RouteStats>> {
  constructor () {
    super(import.meta.url, ROLE_ENV, 'load client')
  }
}

/** The mix: 64 connections, each body set cycled by its route and by echo. */
function soakRoutes (): RouteLoad[] {
  const device = (i: number) => 1 + (i % DEVICES)
  const inference = inferenceBodies(DISTINCT_BODIES, device)
  const frames = frameBatches(rawPiLines(), FRAMES_PER_BATCH, DISTINCT_BODIES).map((batch, i) => framesBody(device(i), batch))
  const keepAlives = Array.from({ length: DEVICES }, (_, i) => keepAliveBody(device(i)))
  return [
    { name: 'POST /ml/post/inference', path: '/ml/post/inference', connections: 12, bodies: inference, baseline: 'echo (inference body)' },
    { name: 'POST /server/post/frames', path: '/server/post/frames', connections: 10, bodies: frames, baseline: 'echo (frames body)' },
    { name: 'POST /server/post/keep_alive', path: '/server/post/keep_alive', connections: 12, bodies: keepAlives, baseline: 'echo (keep-alive body)' },
    { name: 'echo (inference body)', path: '/debug/post/echo', connections: 6, bodies: inference },
    { name: 'echo (frames body)', path: '/debug/post/echo', connections: 6, bodies: frames },
    { name: 'echo (keep-alive body)', path: '/debug/post/echo', connections: 6, bodies: keepAlives },
    { name: 'GET /doors', path: '/doors', connections: 4, baseline: 'GET /debug/get/exists' },
    { name: 'GET /ml/get/door_state', path: '/ml/get/door_state', connections: 4, baseline: 'GET /debug/get/exists' },
    { name: 'GET /debug/get/exists', path: '/debug/get/exists', connections: 4 }
  ]
}

/** SSE subscribers held open during a run; a dropped one is counted and reopened. */
class Subscribers {
  private readonly agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  private readonly requests = new Set<ClientRequest>()
  private closing = false
  events = 0
  drops = 0
  opened = 0

  constructor (private readonly url: string, private readonly paths: string[]) {}

  async open (count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, i) => this.#subscribe(this.paths[i % this.paths.length])))
  }

  #subscribe (path: string): Promise<void> {
    return new Promise((resolve) => {
      const request = get(`${this.url}${path}`, { agent: this.agent }, (response) => {
        this.opened++
        resolve()
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => { this.events += chunk.split('\nevent: ').length - 1 + (chunk.startsWith('event: ') ? 1 : 0) })
        response.on('close', () => this.#dropped(request, path))
      })
      request.on('error', () => { this.#dropped(request, path); resolve() })
      this.requests.add(request)
    })
  }

  #dropped (request: ClientRequest, path: string): void {
    if (!this.requests.delete(request) || this.closing) return
    this.drops++
    setTimeout(() => { if (!this.closing) this.#subscribe(path).catch(() => {}) }, 500).unref()
  }

  get open_ (): number {
    return this.requests.size
  }

  close (): void {
    this.closing = true
    for (const request of this.requests) request.destroy()
    this.requests.clear()
    this.agent.destroy()
  }
}

async function loopDelay (url: string): Promise<LoopDelay> {
  return loopDelayOf(await scrapeMetrics(url))
}

async function checkpoints (url: string): Promise<Checkpoints> {
  return checkpointsOf(await scrapeMetrics(url))
}

/** One route alone at 64 connections, with what the server's event loop and CPU did meanwhile. */
interface AloneRun {
  stats: RouteStats
  loop: LoopDelay
  cpuUsPerRequest: number
}

interface Pair {
  route: string
  echo: AloneRun
  own: AloneRun
  ratio: number
}

interface DesignResult {
  label: string
  env: Record<string, string>
  /** Each run of the soak's mix, in the order run (alternating with the other design). */
  mixes: Array<{ routes: Record<string, RouteStats>, loop: LoopDelay, sseEvents: number }>
  pairs: Pair[]
  checkpoints: Checkpoints
}

/** Every device known and live, then a short warm-up of the whole mix (JIT, caches). */
async function prepare (client: LoadClient, server: ChildServer, routes: RouteLoad[]): Promise<void> {
  for (const body of routes.find((route) => route.path === '/server/post/keep_alive')?.bodies ?? []) {
    await fetch(`${server.url}/server/post/keep_alive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  }
  await client.run({ url: server.url, seconds: 5, routes })
}

/**
 * Before and after on two servers up at once, the runs alternating between
 * them so a change in the shared machine's load hits both alike: `repeats`
 * times the soak's whole mix (with the SSE subscribers) for `mixSeconds` on
 * each; then each of PAIRED alone at 64 connections for `aloneSeconds`, right
 * after echo of exactly its bodies alone, on each.
 */
async function compareDesigns (
  client: LoadClient,
  seedDir: string,
  designs: Array<{ label: string, env: Record<string, string> }>,
  mixSeconds: number,
  aloneSeconds: number,
  repeats: number,
  sseCount: number
): Promise<DesignResult[]> {
  const servers: ChildServer[] = []
  const subscribers: Subscribers[] = []
  try {
    for (const design of designs) servers.push(await startChildServer({ seedDir, env: design.env, label: design.label.replace(/\W+/g, '-') }))
    const routes = soakRoutes()
    for (const server of servers) await prepare(client, server, routes)
    const results: DesignResult[] = designs.map((design) => ({ ...design, mixes: [], pairs: [], checkpoints: { worker: 0, main: 0, mainMaxMs: 0 } }))
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const [index, server] of servers.entries()) {
        console.error(`${designs[index].label}: the soak's mix with ${sseCount} SSE subscribers, 64 connections, ${mixSeconds} s …`)
        const sse = new Subscribers(server.url, ['/doors/stream', '/ml/get/door_state/stream'])
        subscribers.push(sse)
        await sse.open(sseCount)
        await loopDelay(server.url)
        const mix = await client.run({ url: server.url, seconds: mixSeconds, routes })
        results[index].mixes.push({ routes: mix, loop: await loopDelay(server.url), sseEvents: sse.events })
        sse.close()
      }
    }
    const alone = async (server: ChildServer, route: RouteLoad): Promise<AloneRun> => {
      await loopDelay(server.url)
      const cpuBefore = server.sample().cpuSeconds
      const result = await client.run({ url: server.url, seconds: aloneSeconds, routes: [{ ...route, connections: 64 }] })
      const cpu = server.sample().cpuSeconds - cpuBefore
      const stats = result[route.name]
      return { stats, loop: await loopDelay(server.url), cpuUsPerRequest: cpu * 1e6 / Math.max(1, stats.requests) }
    }
    for (const name of PAIRED) {
      const route = routes.find((candidate) => candidate.name === name) as RouteLoad
      for (const [index, server] of servers.entries()) {
        console.error(`${designs[index].label}: ${name}, and echo of its bodies, each alone at 64 connections, ${aloneSeconds} s …`)
        const echo = await alone(server, { name: 'echo', path: '/debug/post/echo', connections: 64, bodies: route.bodies })
        const own = await alone(server, route)
        results[index].pairs.push({ route: name, echo, own, ratio: own.stats.p99 / echo.stats.p99 })
      }
    }
    for (const [index, server] of servers.entries()) results[index].checkpoints = await checkpoints(server.url)
    return results
  } finally {
    for (const sse of subscribers) sse.close()
    for (const server of servers) await server.dispose()
  }
}

/** The routes run alone, each against echo of its bodies. */
const PAIRED = ['POST /server/post/keep_alive', 'POST /server/post/frames', 'POST /ml/post/inference']

interface SoakResult {
  seconds: number
  routes: Record<string, RouteStats>
  /** /proc, plus heap used and the event-loop delay since the previous sample from the server's metrics. */
  samples: Array<ProcessSample & { at: string, heapUsedMiB: number, loop: LoopDelay }>
  loop: LoopDelay
  sse: { subscribers: number, events: number, drops: number }
  checkpoints: Checkpoints
  exit: number | string
  databaseBytes: number
  lastLogLines: string[]
}

/** The whole mix at once for `seconds`, with SSE subscribers; /proc sampled at the start, every minute and at the end. */
async function runSoak (client: LoadClient, seedDir: string, seconds: number, sseCount: number): Promise<SoakResult> {
  const server = await startChildServer({ seedDir, label: 'soak' })
  const subscribers = new Subscribers(server.url, ['/doors/stream', '/ml/get/door_state/stream'])
  try {
    const routes = soakRoutes()
    await prepare(client, server, routes)
    await subscribers.open(sseCount)
    await loopDelay(server.url)
    const sample = async (at: string): Promise<SoakResult['samples'][number]> => {
      const metrics = await scrapeMetrics(server.url)
      const heap = Number(/^nodejs_heap_size_used_bytes ([0-9.e+]+)$/m.exec(metrics)?.[1] ?? Number.NaN)
      return { at, ...server.sample(), heapUsedMiB: round(heap / 1024 ** 2, 1), loop: loopDelayOf(metrics) }
    }
    const samples: SoakResult['samples'] = [await sample('start')]
    console.error(`soak: ${routes.reduce((sum, route) => sum + route.connections, 0)} connections, ${subscribers.open_} SSE subscribers, ${seconds} s …`)
    let minute = 0
    const sampler = setInterval(() => { sample(`minute ${++minute}`).then((taken) => samples.push(taken), () => {}) }, 60_000)
    const result = await client.run({ url: server.url, seconds, routes }).finally(() => clearInterval(sampler))
    const last = await sample('end of load')
    samples.push(last)
    // each sample's delay covers the minute before it (the metric resets when read)
    const loop = {
      maxMs: Math.max(...samples.slice(1).map((taken) => taken.loop.maxMs)),
      p99Ms: Math.max(...samples.slice(1).map((taken) => taken.loop.p99Ms))
    }
    await new Promise((resolve) => setTimeout(resolve, 2000))
    samples.push(await sample('end'))
    const sse = { subscribers: subscribers.opened, events: subscribers.events, drops: subscribers.drops }
    subscribers.close()
    const done = await checkpoints(server.url)
    const databaseBytes = server.databaseBytes()
    const exit = await server.stop()
    const lastLogLines = server.output().split('\n').filter((line) => line.trim() !== '').slice(-5)
    return { seconds, routes: result, samples, loop, sse, checkpoints: done, exit, databaseBytes, lastLogLines }
  } finally {
    subscribers.close()
    await server.dispose()
  }
}

export default async function soakBench (): Promise<BenchReport> {
  const minutes = Number(process.env.SOAK_MINUTES ?? 10)
  const compareSeconds = Number(process.env.SOAK_COMPARE_SECONDS ?? 60)
  const aloneSeconds = Number(process.env.SOAK_ALONE_SECONDS ?? 20)
  const compareRepeats = Number(process.env.SOAK_COMPARE_REPEATS ?? 2)
  const sseCount = Number(process.env.SOAK_SSE ?? 400)
  const seedDir = trainedDataDir()
  const client = new LoadClient()
  try {
    const designs = compareSeconds > 0
      ? await compareDesigns(
        client,
        seedDir,
        [{ label: 'previous design', env: PREVIOUS_DESIGN }, { label: 'this design', env: {} }],
        compareSeconds,
        aloneSeconds,
        compareRepeats,
        sseCount
      )
      : []
    const soak = await runSoak(client, seedDir, Math.round(minutes * 60), sseCount)

    const routes = soakRoutes()
    const baselineOf = (name: string) => routes.find((route) => route.name === name)?.baseline
    const table: BenchReport['table'] = []
    const row = (part: string, name: string, conns: number, stats: RouteStats, seconds: number, baseline: number, loopMaxMs?: number) => ({
      part,
      route: name,
      conns,
      requests: stats.requests,
      'req/s': round(stats.requests / seconds),
      'errors+non-2xx': stats.errors + stats.timeouts + stats.non2xx,
      'p50 ms': round(stats.p50, 1),
      'p99 ms': round(stats.p99, 1),
      'max ms': round(stats.max, 0),
      'echo p99': Number.isFinite(baseline) ? round(baseline, 1) : '',
      'p99 / echo': Number.isFinite(baseline) ? round(stats.p99 / baseline, 2) : '',
      'loop max ms': loopMaxMs === undefined ? '' : round(loopMaxMs, 0)
    })
    for (const design of designs) {
      for (const [index, run] of design.mixes.entries()) {
        for (const route of routes.filter((candidate) => PAIRED.includes(candidate.name))) {
          table.push(row(
            `${design.label}, mix ${index + 1}`,
            route.name,
            route.connections,
            run.routes[route.name],
            compareSeconds,
            run.routes[route.baseline as string].p99,
            route === routes[0] ? run.loop.maxMs : undefined
          ))
        }
      }
    }
    for (const design of designs) {
      for (const pair of design.pairs) {
        table.push(row(`${design.label}, alone`, pair.route, 64, pair.own.stats, aloneSeconds, pair.echo.stats.p99, pair.own.loop.maxMs))
      }
    }
    for (const route of routes) {
      const baseline = baselineOf(route.name)
      table.push(row(
        `soak ${minutes} min`,
        route.name,
        route.connections,
        soak.routes[route.name],
        soak.seconds,
        baseline ? soak.routes[baseline].p99 : Number.NaN,
        route === routes[0] ? soak.loop.maxMs : undefined
      ))
    }

    const ratio = (name: string) => {
      const baseline = baselineOf(name)
      return baseline ? soak.routes[name].p99 / soak.routes[baseline].p99 : Number.NaN
    }
    const over = routes.filter((route) => ratio(route.name) > RATIO_TARGET).map((route) => `${route.name} ${round(ratio(route.name), 2)}×`)
    const errors = Object.values(soak.routes).reduce((sum, route) => sum + route.errors + route.timeouts + route.non2xx, 0)
    const routeAnswers = Object.entries(soak.routes).map(([name, route]) => [name, { ...route.statusCodes, errors: route.errors, timeouts: route.timeouts }])
    const first = soak.samples.find((sample) => sample.at === 'minute 1') ?? soak.samples[0]
    const last = soak.samples.at(-1) as ProcessSample
    // RSS swings with the garbage collector (a sample can land on either side of a collection):
    // flat = the peak of the last third of the samples no higher than 10 % above the peak before it
    const during = soak.samples.filter((sample) => sample.at.startsWith('minute') || sample.at === 'end of load')
    const cut = Math.max(1, Math.floor(during.length * 2 / 3))
    const peakBefore = Math.max(...during.slice(0, cut).map((sample) => sample.rssMiB))
    const peakAfter = Math.max(...during.slice(cut).map((sample) => sample.rssMiB), 0)
    const rssGrowth = (peakAfter - peakBefore) / peakBefore
    const cpu = (last.cpuSeconds - soak.samples[0].cpuSeconds) / soak.seconds
    const sampleFigures = (sample: SoakResult['samples'][number]) =>
      `${sample.at} ${sample.rssMiB}/${sample.heapUsedMiB}/${sample.fds}/${sample.threads}/${round(sample.loop.maxMs, 0)}`
    const notes = [
      `machine: load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (2 cores shared; the load client runs on the same machine)`,
      ...designs.map((design) => {
        const mixRatio = (name: string) => round(median(design.mixes.map((run) => run.routes[name].p99 / run.routes[baselineOf(name) as string].p99)), 2)
        const mixP99 = (name: string) => design.mixes.map((run) => round(run.routes[name].p99, 0)).join('/')
        const refused = design.mixes.reduce(
          (sum, run) => sum + Object.values(run.routes).reduce((all, route) => all + route.non2xx + route.errors + route.timeouts, 0),
          0
        )
        const requests = design.mixes.reduce(
          (sum, run) => sum + Object.values(run.routes).reduce((all, route) => all + route.requests, 0),
          0
        )
        return `${design.label} (${Object.entries(design.env).map(([key, value]) => `${key}=${value}`).join(' ') || 'defaults'}): ` +
          'the mix, median p99 / echo p99: ' +
          PAIRED.map((name) => `${name} ${mixRatio(name)}× (p99 ${mixP99(name)} ms)`).join(', ') +
          `, echo (keep-alive body) p99 ${mixP99('echo (keep-alive body)')} ms, liveness p99 ${mixP99('GET /debug/get/exists')} ms; ` +
          `${requests} requests, ${refused} errors or non-2xx; ` +
          `event loop max ${design.mixes.map((run) => round(run.loop.maxMs, 0)).join('/')} ms, ` +
          `p99 ${design.mixes.map((run) => round(run.loop.p99Ms, 0)).join('/')} ms; alone: ` +
          design.pairs.map((pair) =>
            `${pair.route} ${round(pair.ratio, 2)}× (max ${round(pair.own.stats.max, 0)} vs ${round(pair.echo.stats.max, 0)} ms, ` +
            `CPU ${round(pair.own.cpuUsPerRequest)} vs ${round(pair.echo.cpuUsPerRequest)} µs/req)`).join(', ') +
          `; WAL checkpoints off the request path ${design.checkpoints.worker}, remainders between requests ${design.checkpoints.main}`
      }),
      `target (soak): no route's p99 above ${RATIO_TARGET}× echo of the same body (the GETs: /debug/get/exists) -> ` +
        `${over.length ? `MISSED: ${over.join(', ')}` : 'met'}`,
      `target (soak): zero errors and non-2xx -> ${errors} -> ${verdict(errors === 0)}` +
        `${errors ? ` (${JSON.stringify(Object.fromEntries(routeAnswers))})` : ''}`,
      `target (soak): RSS and descriptors flat: RSS peak ${peakBefore} MiB in the first two thirds, ` +
        `${peakAfter} MiB in the last (${(rssGrowth * 100).toFixed(1)} %), ` +
        `fds ${first.fds} at minute 1 -> ${last.fds} at the end -> ${verdict(rssGrowth < 0.1 && last.fds <= first.fds + 8)}`,
      'soak server (RSS MiB / heap used MiB / fds / threads / event-loop max ms in the minute before): ' +
        `${soak.samples.map(sampleFigures).join(', ')}; ` +
        `CPU ${cpu.toFixed(2)} cores on average; event loop delay p99 ${round(soak.loop.p99Ms, 0)} ms, max ${round(soak.loop.maxMs, 0)} ms`,
      `soak SSE: ${soak.sse.subscribers} subscriptions opened, ${soak.sse.events} events received, ${soak.sse.drops} dropped by the server; ` +
        `liveness (GET /debug/get/exists) p99 ${round(soak.routes['GET /debug/get/exists'].p99, 1)} ms`,
      'soak p99 per minute, ms: ' +
        `${routes.map((route) => `${route.name} ${soak.routes[route.name].perMinute.map((minute) => round(minute.p99, 0)).join('/')}`).join('; ')}`,
      `soak: WAL checkpoints off the request path ${soak.checkpoints.worker}, remainders between requests ${soak.checkpoints.main} ` +
        `(longest ${round(soak.checkpoints.mainMaxMs, 1)} ms); server exit ${soak.exit}; ` +
        `database ${round(soak.databaseBytes / 1024 ** 2, 1)} MiB at the end`
    ]
    return {
      name: 'soak',
      table,
      notes,
      results: { minutes, compareSeconds, aloneSeconds, compareRepeats, sseCount, routes, designs, soak, loadavg: loadavg() }
    }
  } finally {
    client.close()
    rmSync(seedDir, { recursive: true, force: true })
  }
}
