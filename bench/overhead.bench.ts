/**
 * `npm run bench -- overhead`: what doorsense's per-request parts cost,
 * against a bare Fastify 5 of the same version serving the same routes
 * (bench/bare-server.ts), both in child processes on this machine, loaded in
 * the same run by the same load generator (autocannon in a forked client):
 *
 * 1. GET /debug/get/exists (liveness, "Success" as text/plain) and POST
 *    /debug/post/echo of the same 0.8 KB bodies (session A's stringified
 *    inference payloads), each for OVERHEAD_SECONDS (5) at
 *    OVERHEAD_CONNECTIONS (64), on the bare app and on doorsense
 *    (`bin/serve.ts`, empty DATA_DIR, LOG_LEVEL=info as deployed: request
 *    lines at debug, so none is written), one after the other, the order
 *    swapped every round, OVERHEAD_ROUNDS (3) rounds: requests/s, p50/p99,
 *    the ratio to the bare app's requests/s in the same round (target
 *    >= 0.8), and each server's own CPU time per request (/proc).
 * 2. Each part every request runs (PER_REQUEST_PARTS in core/app.ts:
 *    security headers, load shedding, request metrics, the full-disk check,
 *    the Idempotency-Key prune check, the per-request logger, the JSON
 *    nesting check), then all of them, left out of a doorsense built for the
 *    bench (bench/overhead-server.ts, buildApp's `benchWithout`): its cost
 *    is the server's CPU µs per request with everything on minus without
 *    it, measured back to back on the same route (OVERHEAD_ABLATION=0
 *    skips this part). CPU time per request rather than requests/s: the
 *    machine is shared, and the client runs on the same cores.
 * 3. The same parts in process, where no socket, client or scheduler adds
 *    its noise: one app per variant (everything on, each part left out,
 *    all left out) built in this process, the two routes called through
 *    `app.inject` one request at a time, OVERHEAD_INJECT_ROUNDS (41) rounds
 *    of OVERHEAD_INJECT_MS (60) per route and variant, the variants taking
 *    turns; a part's cost is the median over rounds of the µs per request
 *    (wall time: CPU time is counted in scheduler ticks, too coarse for
 *    slices this short) with everything on minus without it in the same round (inject's
 *    own cost, the same in every variant, cancels out; so does the machine's
 *    drift, which over long slices swamped the parts), with the quartiles of
 *    those differences. OVERHEAD_ABLATION=0 skips this part too;
 *    OVERHEAD_ABLATION=inprocess runs it without part 2.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp, PER_REQUEST_PARTS, type App, type PerRequestPart } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { ADMIN_TOKEN, BARE_SERVER_SCRIPT, cpuSeconds, OVERHEAD_SERVER_SCRIPT, startChildServer, type ChildServer } from './child-server.js'
import { ForkedClient, serveJobs } from './forked-client.js'
import { bodiesFor, type BodySpec } from './lib/bodies.js'
import { round, verdict } from './lib/format.js'
import { median, quantile } from './lib/quantile.js'
import type { BenchReport } from './lib/report.js'
import { performRouteLoad, type RouteLoadJob, type RouteLoadResult } from './lib/route-load.js'

const ROLE_ENV = 'DOORSENSE_BENCH_OVERHEAD_CLIENT'
const RATIO_TARGET = 0.8

// ---------------------------------------------------------------- client side

serveJobs<RouteLoadJob, RouteLoadResult>(ROLE_ENV, performRouteLoad)

// ---------------------------------------------------------------- server side

/** The two routes, as both servers serve them. */
const ROUTES = {
  liveness: { path: '/debug/get/exists', body: { kind: 'none' } },
  echo: { path: '/debug/post/echo', body: { kind: 'inference-string', device: 1 } }
} satisfies Record<string, { path: string, body: BodySpec }>
type RouteName = keyof typeof ROUTES
const ROUTE_NAMES = Object.keys(ROUTES) as RouteName[]

/** One run: the client's counts and latencies, and the server's CPU time per answered request. */
interface Run extends RouteLoadResult {
  cpuUsPerRequest: number
}

/** A round of part 1 on one route. */
interface Round {
  bare: Run
  doorsense: Run
  /** doorsense req/s / bare req/s. */
  ratio: number
}

/** A part left out, on one route: the variant's run and the full doorsense's right beside it. */
interface Ablation {
  without: Run
  allOn: Run
  /** CPU µs per request the part costs: allOn's minus without's. */
  costUs: number
}

/** Who is left out in a variant of parts 2 and 3. */
type Variant = PerRequestPart | 'all'
const VARIANTS: readonly Variant[] = [...PER_REQUEST_PARTS, 'all']

/** Part 3 on one route: median µs (wall time) per injected request with everything on, and without each part. */
interface InProcess {
  allOnUs: number
  withoutUs: Record<Variant, number>
  /** The median over rounds of (everything on − without it) within the round: slices next to each other in time, so the machine's drift cancels. */
  costUs: Record<Variant, number>
  /** The quartiles of those paired differences: how far the cost can be read on this machine. */
  costQuartilesUs: Record<Variant, [number, number]>
}

/**
 * Part 3: one app per variant in this process, each route injected one
 * request at a time for `ms` per variant and round, the variants taking turns.
 */
async function inProcessCosts (rounds: number, ms: number, logLevel: string): Promise<Record<RouteName, InProcess>> {
  const dirs: string[] = []
  const apps = new Map<Variant | 'on', App>()
  try {
    for (const variant of ['on', ...VARIANTS] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'doorsense-bench-overhead-inject-'))
      dirs.push(dir)
      const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: logLevel, LOG_TO_FILE: 'false', ADMIN_TOKEN, PORT: '0' })
      const app = await buildApp(config, { benchWithout: variant === 'on' ? [] : variant === 'all' ? PER_REQUEST_PARTS : [variant] })
      await app.ready()
      apps.set(variant, app)
    }
    const results = {} as Record<RouteName, InProcess>
    for (const route of ROUTE_NAMES) {
      const bodies = bodiesFor(ROUTES[route].body)
      const call = (app: App, i: number) => bodies.length
        ? app.inject({ method: 'POST', url: ROUTES[route].path, headers: { 'content-type': 'application/json' }, payload: bodies[i % bodies.length] })
        : app.inject({ method: 'GET', url: ROUTES[route].path })
      // wall time of short slices, paired within a round: the process's CPU time is counted in scheduler ticks
      // (milliseconds), too coarse for a slice this short, while a slice descheduled now and then is an outlier
      // the median of the paired differences passes by
      const perRequest = async (app: App, forMs: number) => {
        let count = 0
        const started = performance.now()
        let elapsed = 0
        while (elapsed < forMs) {
          const response = await call(app, count++)
          if (response.statusCode !== 200) throw new Error(`${ROUTES[route].path} answered ${response.statusCode}: ${response.body}`)
          // injected requests chain on promises alone: let the event loop turn (timers, the load-shedding sampler) as a server's does
          if (count % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
          elapsed = performance.now() - started
        }
        return elapsed * 1000 / count
      }
      for (const app of apps.values()) await perRequest(app, ms) // warm-up
      const samples = new Map<Variant | 'on', number[]>([...apps.keys()].map((variant) => [variant, []]))
      for (let r = 0; r < rounds; r++) {
        console.error(`in process: ${route}, round ${r + 1}/${rounds}, ${apps.size} variants × ${ms} ms …`)
        const order = r % 2 === 0 ? [...apps] : [...apps].reverse()
        for (const [variant, app] of order) samples.get(variant)?.push(await perRequest(app, ms))
      }
      const on = samples.get('on') ?? []
      const allOnUs = median(on)
      const withoutUs = Object.fromEntries(VARIANTS.map((variant) => [variant, median(samples.get(variant) ?? [])])) as Record<Variant, number>
      const paired = (variant: Variant) => (samples.get(variant) ?? []).map((us, r) => (on[r] ?? Number.NaN) - us).sort((a, b) => a - b)
      const costUs = Object.fromEntries(VARIANTS.map((variant) => [variant, median(paired(variant))])) as Record<Variant, number>
      const costQuartilesUs = Object.fromEntries(VARIANTS.map((variant) => {
        const differences = paired(variant)
        return [variant, [quantile(differences, 0.25), quantile(differences, 0.75)]]
      })) as Record<Variant, [number, number]>
      results[route] = { allOnUs, withoutUs, costUs, costQuartilesUs }
    }
    return results
  } finally {
    for (const app of apps.values()) await app.close()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
}

/** A part's in-process cost as the table shows it: the median paired difference and its quartiles. */
function inProcessCell (result: InProcess, variant: Variant): string {
  const [low, high] = result.costQuartilesUs[variant]
  return `${round(result.costUs[variant], 1)} [${round(low, 1)}, ${round(high, 1)}]`
}

/** The load client: this file forked. */
class LoadClient extends ForkedClient<RouteLoadJob, RouteLoadResult> {
  constructor () {
    super(import.meta.url, ROLE_ENV, 'load client')
  }
}

export default async function overheadBench (): Promise<BenchReport> {
  const seconds = Number(process.env.OVERHEAD_SECONDS ?? 5)
  const connections = Number(process.env.OVERHEAD_CONNECTIONS ?? 64)
  const rounds = Number(process.env.OVERHEAD_ROUNDS ?? 3)
  // OVERHEAD_ABLATION=inprocess: part 3 without part 2 (the HTTP ablation, whose differences this machine's noise can swamp)
  const inProcessOnly = process.env.OVERHEAD_ABLATION === 'inprocess'
  const ablate = process.env.OVERHEAD_ABLATION !== '0' && !inProcessOnly
  const env = { LOG_LEVEL: process.env.OVERHEAD_LOG_LEVEL ?? 'info' }
  const client = new LoadClient()
  const servers: ChildServer[] = []
  const start = async (label: string, script?: string, extra: Record<string, string> = {}) => {
    const server = await startChildServer({ label, script, env: { ...env, ...extra } })
    servers.push(server)
    return server
  }
  const measure = async (server: ChildServer, route: RouteName, runSeconds = seconds): Promise<Run> => {
    const cpuBefore = cpuSeconds(server.pid)
    const result = await client.run({ url: server.url, connections, seconds: runSeconds, ...ROUTES[route] })
    const cpu = cpuSeconds(server.pid) - cpuBefore
    return { ...result, cpuUsPerRequest: cpu * 1e6 / Math.max(1, result.ok + result.non2xx) }
  }
  const warmUp = async (server: ChildServer) => {
    for (const route of ROUTE_NAMES) await measure(server, route, 2)
  }

  try {
    const bare = await start('overhead-bare', BARE_SERVER_SCRIPT)
    const doorsense = await start('overhead-doorsense')
    await warmUp(bare)
    await warmUp(doorsense)

    const headline: Record<RouteName, Round[]> = { liveness: [], echo: [] }
    for (let r = 0; r < rounds; r++) {
      for (const route of ROUTE_NAMES) {
        console.error(`round ${r + 1}/${rounds}: ${route}, bare and doorsense, ${seconds} s each …`)
        const order = r % 2 === 0 ? [bare, doorsense] : [doorsense, bare]
        const runs = new Map<ChildServer, Run>()
        for (const server of order) runs.set(server, await measure(server, route))
        const bareRun = runs.get(bare) as Run
        const doorsenseRun = runs.get(doorsense) as Run
        headline[route].push({ bare: bareRun, doorsense: doorsenseRun, ratio: doorsenseRun.reqPerS / bareRun.reqPerS })
      }
    }

    const ablation: Partial<Record<Variant, Record<RouteName, Ablation>>> = {}
    if (ablate) {
      for (const part of VARIANTS) {
        const left = part === 'all' ? PER_REQUEST_PARTS.join(',') : part
        const variant = await start(`overhead-without-${part}`, OVERHEAD_SERVER_SCRIPT, { OVERHEAD_WITHOUT: left })
        await warmUp(variant)
        const byRoute = {} as Record<RouteName, Ablation>
        for (const route of ROUTE_NAMES) {
          console.error(`without ${part}: ${route}, and doorsense with everything, ${seconds} s each …`)
          const without = await measure(variant, route)
          const allOn = await measure(doorsense, route)
          byRoute[route] = { without, allOn, costUs: allOn.cpuUsPerRequest - without.cpuUsPerRequest }
        }
        ablation[part] = byRoute
        await variant.dispose()
        servers.splice(servers.indexOf(variant), 1)
      }
    }

    // many short slices rather than a few long ones: each part's cost is read within a round, and a round is half a second
    const injectRounds = Number(process.env.OVERHEAD_INJECT_ROUNDS ?? 41)
    const injectMs = Number(process.env.OVERHEAD_INJECT_MS ?? 60)
    const inProcess = ablate || inProcessOnly ? await inProcessCosts(injectRounds, injectMs, env.LOG_LEVEL) : undefined

    const table: BenchReport['table'] = []
    const summary = {} as Record<RouteName, { ratio: number, minRatio: number, maxRatio: number, overheadCpuUs: number }>
    for (const route of ROUTE_NAMES) {
      const runs = headline[route]
      const ratios = runs.map((run) => run.ratio)
      const cpu = (side: 'bare' | 'doorsense') => median(runs.map((run) => run[side].cpuUsPerRequest))
      summary[route] = {
        ratio: median(ratios), minRatio: Math.min(...ratios), maxRatio: Math.max(...ratios), overheadCpuUs: cpu('doorsense') - cpu('bare')
      }
      for (const side of ['bare', 'doorsense'] as const) {
        table.push({
          route: `${route} (${ROUTES[route].path})`,
          server: side === 'bare' ? 'bare Fastify' : 'doorsense',
          'req/s': round(median(runs.map((run) => run[side].reqPerS))),
          'p50 ms': round(median(runs.map((run) => run[side].p50)), 2),
          'p99 ms': round(median(runs.map((run) => run[side].p99)), 2),
          'vs bare': side === 'bare' ? 1 : `${round(summary[route].ratio, 2)} (${round(summary[route].minRatio, 2)}–${round(summary[route].maxRatio, 2)})`,
          'CPU µs/req': round(cpu(side), 1),
          'part cost µs': side === 'bare' ? '' : `${round(summary[route].overheadCpuUs, 1)} over bare`,
          'in-process cost µs': side === 'bare' || !inProcess ? '' : `${round(inProcess[route].allOnUs, 1)} µs/inject`,
          errors: runs.reduce((sum, run) => sum + run[side].errors + run[side].non2xx, 0)
        })
      }
    }
    for (const [part, byRoute] of Object.entries(ablation)) {
      for (const route of ROUTE_NAMES) {
        const { without, allOn, costUs } = byRoute[route]
        table.push({
          route: `${route} (${ROUTES[route].path})`,
          server: `doorsense without ${part}`,
          'req/s': round(without.reqPerS),
          'p50 ms': round(without.p50, 2),
          'p99 ms': round(without.p99, 2),
          'vs bare': '',
          'CPU µs/req': `${round(without.cpuUsPerRequest, 1)} (all on: ${round(allOn.cpuUsPerRequest, 1)})`,
          'part cost µs': round(costUs, 1),
          'in-process cost µs': inProcess ? inProcessCell(inProcess[route], part as Variant) : '',
          errors: without.errors + without.non2xx + allOn.errors + allOn.non2xx
        })
      }
    }

    // part 3 alone: a row per part and route
    if (inProcess && !ablate) {
      for (const part of VARIANTS) {
        for (const route of ROUTE_NAMES) {
          table.push({
            route: `${route} (${ROUTES[route].path})`,
            server: `doorsense without ${part}`,
            'req/s': '',
            'p50 ms': '',
            'p99 ms': '',
            'vs bare': '',
            'CPU µs/req': '',
            'part cost µs': '',
            'in-process cost µs': inProcessCell(inProcess[route], part),
            errors: 0
          })
        }
      }
    }

    const notes = [
      `machine: load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (2 cores shared with the client and other work); ` +
        `${rounds} round(s) of ${seconds} s per route and server at ${connections} connections; ratios are doorsense / bare within one round ` +
        '(median, and the range over rounds)',
      ...ROUTE_NAMES.map((route) => `target: ${route} >= ${RATIO_TARGET} x bare: ${round(summary[route].ratio, 2)} x ` +
        `(rounds ${headline[route].map((run) => round(run.ratio, 2)).join(', ')}) -> ${verdict(summary[route].ratio >= RATIO_TARGET)}`),
      ...ablate
        ? ['a part\'s cost: the server\'s CPU µs per request with everything on minus without that part, run back to back on the same route ' +
          '(several µs of noise on this shared machine)']
        : [],
      ...inProcess
        ? [`in process: µs per app.inject (wall time) with everything on minus without the part, within each of ${injectRounds} rounds of ${injectMs} ms ` +
          'per variant (the variants taking turns): the median of those paired differences [their quartiles]']
        : []
    ]
    return {
      name: 'overhead',
      table,
      notes,
      results: { seconds, connections, rounds, logLevel: env.LOG_LEVEL, summary, headline, ablation, inProcess, loadavg: loadavg() }
    }
  } finally {
    client.close()
    for (const server of servers) await server.dispose()
  }
}
