/**
 * `npm run bench -- cluster`: frames/s with door states, and CPU per 1,000
 * frames, of the embedded default and of clusters of 1, 2 and 3 instances
 * (docs/cluster.md, "Capacity"), all in one run on this machine.
 *
 * Every configuration gets the same offered load: CLUSTER_BENCH_DEVICES
 * (default 200) simulated Pis, each posting 20 frames/s in batches of 20 (one
 * POST /server/post/frames a second, its own Idempotency-Key, as the agent
 * sends it; the frames are session A's rows, which the model learned, so
 * the doors read open and closed as in the failover test;
 * CLUSTER_BENCH_FRAMES=raw: the raw Pi recording, another room, as the ingest
 * bench posts), open-loop from a forked client process (so the load's CPU is not
 * the servers'), each batch to the next instance's URL in turn (round-robin,
 * as a proxy in front of the instances would). After a warm-up
 * (CLUSTER_BENCH_WARMUP_SECONDS, 10) the measured run lasts
 * CLUSTER_BENCH_SECONDS (40). CLUSTER_BENCH_QUICK=1: 3 s and 8 s, to iterate.
 *
 * Configurations: `embedded` (one child server, SQLite, no engines), then for
 * each of CLUSTER_BENCH_INSTANCES (1,2,3) that many child servers, each a copy
 * of one trained DATA_DIR, sharing NATS JetStream (CLUSTER_BENCH_NATS_URL,
 * nats://127.0.0.1:4222) under a fresh random CLUSTER_NAME and PostgreSQL
 * (CLUSTER_BENCH_DATABASE_ADMIN_URL, postgres://postgres@127.0.0.1:5432/postgres)
 * in a fresh database; the load starts once every partition is owned and
 * spread. Afterwards the cluster's streams (`<c>_frames`, the `KV_<c>_*`
 * buckets, any other `<c>_` stream) and the database are dropped. Both
 * engines must be on loopback: the bench refuses any other host.
 *
 * Measured per configuration, over the measured run: frames acknowledged per
 * second; CPU seconds (/proc/<pid>/stat) of every doorsense process, of the
 * nats-server process and of every postgres process, each reported apart, so
 * CPU ms per 1,000 frames for doorsense alone and for the whole system
 * (doorsense + engines; the embedded default's system is doorsense alone);
 * frames per core-second (per-core efficiency: two cores cannot show a
 * speed-up from a third instance); the frames route's p50/p99 (client, from
 * the time each batch was sent, and inside the servers); door states kept
 * current (GET /doors on the first instance once a second: the age of each
 * loaded door's lastFrameAt, and the states read); each instance's CPU idle
 * before the load (CLUSTER_BENCH_IDLE_SECONDS, 5) and a fit of the doorsense
 * cores against the instance count (what one more instance costs at the same
 * load); the consumers' lag at the end; the whole
 * machine's busy cores (/proc/stat) and load average, to show what else ran.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import pg from 'pg'
import { cpuSeconds, scrapeMetrics, serverQuantileMs, startChildServer, trainedDataDir, type ChildServer } from './child-server.js'
import { ForkedClient, serveJobs } from './forked-client.js'
import { DISTINCT_BODIES, frameBatches, keepAliveBody } from './lib/bodies.js'
import { round } from './lib/format.js'
import { runPacedFrames, type PacedFramesJob, type PacedFramesResult } from './lib/paced-frames.js'
import { mean } from './lib/mean.js'
import { quantile } from './lib/quantile.js'
import { rawPiLines, stringifiedPayloads } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const ROLE_ENV = 'DOORSENSE_BENCH_CLUSTER_CLIENT'
const FRAMES_PER_BATCH = 20
const FPS = 20
const PARTITIONS = 16
const FRAMES_ROUTE = '/server/post/frames'

// ---------------------------------------------------------------- client side

serveJobs<PacedFramesJob, PacedFramesResult>(ROLE_ENV, runPacedFrames)

/** The load client: this file forked. */
class LoadClient extends ForkedClient<PacedFramesJob, PacedFramesResult> {
  constructor () {
    super(import.meta.url, ROLE_ENV, 'cluster load client')
  }
}

// ---------------------------------------------------------------- the machine

/** The pids of every process whose /proc/<pid>/comm is `name` (the engines: nats-server, postgres and its backends). */
function pidsNamed (name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/** CPU seconds so far of each process named `name`, by pid. */
function cpuByPid (name: string): Map<number, number> {
  const cpu = new Map<number, number>()
  for (const pid of pidsNamed(name)) {
    try {
      cpu.set(pid, cpuSeconds(pid))
    } catch {
      // exited between the listing and the read
    }
  }
  return cpu
}

/**
 * CPU seconds the processes named `name` used between two readings: a
 * process started meanwhile counts from zero, one that exited meanwhile
 * (a postgres backend closed) is lost, a short one at most.
 */
function cpuBetween (before: Map<number, number>, after: Map<number, number>): number {
  let seconds = 0
  for (const [pid, cpu] of after) seconds += cpu - (before.get(pid) ?? 0)
  return seconds
}

/** The whole machine's busy and total CPU ticks so far (/proc/stat's first line; idle and iowait are not busy). */
function machineTicks (): { busy: number, total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  return { busy: total - fields[3] - fields[4], total }
}

/** Refuses an engine URL that is not on loopback: the bench reaches no other host. */
function loopbackUrl (url: string, what: string): string {
  const { hostname } = new URL(url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
    throw new Error(`cluster bench: ${what} ${hostname} is not loopback; the bench reaches 127.0.0.1 only`)
  }
  return url
}

// ---------------------------------------------------------------- the engines

/** A database and a NATS name of a configuration's own, and how to drop both. */
interface ClusterEngines {
  name: string
  databaseUrl: string
  drop: () => Promise<void>
}

/** Runs `sql` on a connection of its own to the admin database. */
async function adminQuery (adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/**
 * A fresh CLUSTER_NAME and PostgreSQL database; drop() deletes every stream
 * of the name (`<c>_…` and the buckets' `KV_<c>_…`) and the database (WITH
 * (FORCE): a pool left open does not keep it).
 */
async function freshEngines (natsUrl: string, adminUrl: string): Promise<ClusterEngines> {
  const name = `bench${randomBytes(5).toString('hex')}`
  const database = `doorsense_${name}`
  await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  const url = new URL(adminUrl)
  url.pathname = `/${database}`
  return {
    name,
    databaseUrl: url.href,
    drop: async () => {
      const nc = await connect({ servers: natsUrl })
      try {
        const jsm = await jetstreamManager(nc)
        const mine: string[] = []
        for await (const stream of jsm.streams.names()) {
          if (stream.startsWith(`${name}_`) || stream.startsWith(`KV_${name}_`)) mine.push(stream)
        }
        for (const stream of mine) await jsm.streams.delete(stream)
      } finally {
        await nc.close()
      }
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
    }
  }
}

// ---------------------------------------------------------------- the instances

interface ClusterStatusView {
  mode: string
  instances: Array<{ id: string, owned: number[], lag: number }>
  owners: Array<{ partition: number, owner: string | null, lag: number | null }>
  stream: { messages: number, bytes: number } | null
}

async function clusterStatus (url: string): Promise<ClusterStatusView> {
  return await (await fetch(`${url}/cluster`)).json() as ClusterStatusView
}

/** Waits until `count` instances are live and every partition is owned, none beyond its fair share. */
async function settled (url: string, count: number, timeoutMs = 60_000): Promise<ClusterStatusView> {
  const fair = Math.ceil(PARTITIONS / count)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await clusterStatus(url).catch(() => undefined)
    if (status && status.instances.length === count && status.owners.every((owner) => owner.owner !== null) &&
      status.instances.every((instance) => instance.owned.length <= fair)) return status
    if (Date.now() > deadline) throw new Error(`cluster bench: ${count} instances did not settle within ${timeoutMs} ms: ${JSON.stringify(status)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** A keep-alive for each device, 32 at a time, round-robin over the instances: every device is a known, live door. */
async function announce (urls: string[], devices: number[]): Promise<void> {
  for (let i = 0; i < devices.length; i += 32) {
    await Promise.all(devices.slice(i, i + 32).map(async (id, j) => {
      const response = await fetch(`${urls[(i + j) % urls.length]}/server/post/keep_alive`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: keepAliveBody(id)
      })
      if (!response.ok) throw new Error(`keep-alive of device ${id}: ${response.status} ${await response.text()}`)
    }))
  }
}

/** What GET /doors showed of the loaded doors, once a second. */
interface Freshness {
  samples: number
  /** Age (ms) of each loaded door's lastFrameAt at each sample, sorted. */
  ages: number[]
  /** Loaded doors missing, or with no frame yet, summed over the samples. */
  missing: number
  /** Loaded doors by state and reason (`open`, `unknown: unfamiliar`, …), summed over the samples. */
  states: Record<string, number>
  /** A sample's own round trip, ms (the slowest). */
  maxFetchMs: number
}

/** Samples GET /doors on `url` once a second until `stop` settles. */
async function sampleDoors (url: string, devices: readonly number[], stop: Promise<unknown>): Promise<Freshness> {
  const loaded = new Set(devices)
  const result: Freshness = { samples: 0, ages: [], missing: 0, states: {}, maxFetchMs: 0 }
  const state = { done: false }
  stop.finally(() => { state.done = true }).catch(() => {})
  // the load's first batches are still on their way: start a second in
  await new Promise((resolve) => setTimeout(resolve, 1000))
  while (!state.done) {
    const asked = performance.now()
    try {
      type DoorView = { device: number, state: string, reason: { code: string } | null, lastFrameAt: string | null }
      const { doors } = await (await fetch(`${url}/doors`)).json() as { doors: DoorView[] }
      const now = Date.now()
      result.maxFetchMs = Math.max(result.maxFetchMs, performance.now() - asked)
      result.samples++
      const seen = new Set<number>()
      for (const door of doors) {
        if (!loaded.has(door.device)) continue
        seen.add(door.device)
        if (door.lastFrameAt === null) result.missing++
        else result.ages.push(now - Date.parse(door.lastFrameAt))
        const state = door.reason ? `${door.state}: ${door.reason.code}` : door.state
        result.states[state] = (result.states[state] ?? 0) + 1
      }
      result.missing += loaded.size - seen.size
    } catch {
      // an overloaded instance: the next sample
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (performance.now() - asked))))
  }
  result.ages.sort((a, b) => a - b)
  return result
}

// ---------------------------------------------------------------- one configuration

interface ConfigurationResult {
  label: string
  instances: number
  cluster: string | null
  offered: number
  run: PacedFramesResult
  acceptedPerS: number
  wallSeconds: number
  cpu: { doorsense: number, doorsenseByInstance: number[], nats: number, postgres: number, client: number, idleCoresPerInstance: number }
  machine: { busyCores: number, otherCores: number, loadavgBefore: number[], loadavgAfter: number[] }
  msPer1k: { doorsense: number, system: number }
  framesPerCoreSecond: { doorsense: number, system: number }
  server: { p50Ms: number, p99Ms: number }
  freshness: {
    samples: number, p50Ms: number, p99Ms: number, maxMs: number, within2s: number, missing: number, states: Record<string, number>, maxFetchMs: number
  }
  lagAtEnd: number | null
  streamAtEnd: { messages: number, bytes: number } | null
}

interface Setup {
  seedDir: string
  devices: number[]
  batches: string[]
  periodMs: number
  warmupSeconds: number
  seconds: number
  idleSeconds: number
  natsUrl: string
  adminUrl: string
  client: LoadClient
}

/** Starts `count` instances (0: the embedded default), drives the load, measures, and takes it all down again. */
async function measure (setup: Setup, count: number): Promise<ConfigurationResult> {
  const label = count === 0 ? 'embedded (SQLite)' : `cluster × ${count}`
  const engines = count === 0 ? undefined : await freshEngines(setup.natsUrl, setup.adminUrl)
  const servers: ChildServer[] = []
  try {
    const env: Record<string, string> = engines
      ? { NATS_URL: setup.natsUrl, DATABASE_URL: engines.databaseUrl, CLUSTER_NAME: engines.name, CLUSTER_PARTITIONS: String(PARTITIONS) }
      : {}
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, count) }, (_, i) =>
      startChildServer({ seedDir: setup.seedDir, env, label: `cluster-${count}-${i}` })))
    for (const outcome of started) if (outcome.status === 'fulfilled') servers.push(outcome.value)
    const failed = started.find((outcome) => outcome.status === 'rejected')
    if (failed) throw failed.reason
    const urls = servers.map((server) => server.url)
    if (count > 0) await settled(urls[0], count)
    // what an instance costs with no frames (heartbeats, leases, timers): to tell it from following every door on every instance
    const idleStart = performance.now()
    const idleBefore = servers.map((server) => server.sample().cpuSeconds)
    await new Promise((resolve) => setTimeout(resolve, setup.idleSeconds * 1000))
    const idleCores = servers.reduce((sum, server, i) => sum + server.sample().cpuSeconds - idleBefore[i], 0) /
      ((performance.now() - idleStart) / 1000) / servers.length
    await announce(urls, setup.devices)
    const offered = setup.devices.length * FPS
    console.error(`cluster bench: ${label}: ${setup.devices.length} devices, ${offered} frames/s offered; warm-up ${setup.warmupSeconds} s …`)
    // an Idempotency-Key on every batch, as the agent sends them
    const job = { urls, devices: setup.devices, seconds: setup.warmupSeconds, periodMs: setup.periodMs, batches: setup.batches, idempotency: true }
    if (setup.warmupSeconds > 0) await setup.client.run(job)

    const metricsBefore = await Promise.all(urls.map((url) => scrapeMetrics(url)))
    const loadBefore = loadavg()
    const doorsenseBefore = servers.map((server) => server.sample().cpuSeconds)
    const natsBefore = cpuByPid('nats-server')
    const postgresBefore = cpuByPid('postgres')
    const ticksBefore = machineTicks()
    const wallStart = performance.now()
    console.error(`cluster bench: ${label}: measuring ${setup.seconds} s …`)
    const load = setup.client.run({ ...job, seconds: setup.seconds })
    const doors = sampleDoors(urls[0], setup.devices, load)
    const run = await load
    const wallSeconds = (performance.now() - wallStart) / 1000
    const ticksAfter = machineTicks()
    const doorsenseByInstance = servers.map((server, i) => server.sample().cpuSeconds - doorsenseBefore[i])
    const nats = count === 0 ? 0 : cpuBetween(natsBefore, cpuByPid('nats-server'))
    const postgres = count === 0 ? 0 : cpuBetween(postgresBefore, cpuByPid('postgres'))
    const loadAfter = loadavg()
    const freshness = await doors
    const metricsAfter = await Promise.all(urls.map((url) => scrapeMetrics(url)))
    const status = count === 0 ? undefined : await clusterStatus(urls[0]).catch(() => undefined)

    const doorsense = doorsenseByInstance.reduce((a, b) => a + b, 0)
    const system = doorsense + nats + postgres
    const thousands = Math.max(1, run.framesAccepted) / 1000
    const busyCores = (ticksAfter.busy - ticksBefore.busy) / (ticksAfter.total - ticksBefore.total) * cpus().length
    const ages = freshness.ages
    return {
      label,
      instances: count,
      cluster: engines?.name ?? null,
      offered,
      run,
      acceptedPerS: run.framesAccepted / run.elapsedSeconds,
      wallSeconds,
      cpu: { doorsense, doorsenseByInstance, nats, postgres, client: run.clientCpuSeconds, idleCoresPerInstance: idleCores },
      machine: {
        busyCores,
        // what ran besides the servers, the engines and the load client (this process's sampling, other users' work)
        otherCores: busyCores - (system + run.clientCpuSeconds) / wallSeconds,
        loadavgBefore: loadBefore,
        loadavgAfter: loadAfter
      },
      msPer1k: { doorsense: doorsense * 1000 / thousands, system: system * 1000 / thousands },
      framesPerCoreSecond: { doorsense: run.framesAccepted / doorsense, system: run.framesAccepted / system },
      server: {
        p50Ms: serverQuantileMs(metricsBefore, metricsAfter, FRAMES_ROUTE, 200, 0.5),
        p99Ms: serverQuantileMs(metricsBefore, metricsAfter, FRAMES_ROUTE, 200, 0.99)
      },
      freshness: {
        samples: freshness.samples,
        p50Ms: quantile(ages, 0.5),
        p99Ms: quantile(ages, 0.99),
        maxMs: ages.at(-1) ?? Number.NaN,
        within2s: ages.length ? ages.filter((age) => age <= 2000).length / ages.length : Number.NaN,
        missing: freshness.missing,
        states: freshness.states,
        maxFetchMs: freshness.maxFetchMs
      },
      lagAtEnd: status ? status.instances.reduce((sum, instance) => sum + instance.lag, 0) : null,
      streamAtEnd: status?.stream ?? null
    }
  } finally {
    await Promise.all(servers.map((server) => server.dispose()))
    await engines?.drop()
  }
}

// ---------------------------------------------------------------- the report

/** Least squares of doorsense cores busy against the instance count: what one more instance adds at the same load. */
function perInstanceFit (clusters: readonly ConfigurationResult[]): { intercept: number, slope: number } | undefined {
  if (clusters.length < 2) return undefined
  const xs = clusters.map((result) => result.instances)
  const ys = clusters.map((result) => result.cpu.doorsense / result.wallSeconds)
  const mx = mean(xs)
  const my = mean(ys)
  const sxx = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0)
  if (sxx === 0) return undefined
  const slope = xs.reduce((sum, x, i) => sum + (x - mx) * (ys[i] - my), 0) / sxx
  return { intercept: my - slope * mx, slope }
}

/** Runs every configuration in turn and reports them side by side. */
export default async function clusterBench (): Promise<BenchReport> {
  const quick = process.env.CLUSTER_BENCH_QUICK === '1'
  const deviceCount = Number(process.env.CLUSTER_BENCH_DEVICES ?? 200)
  const seconds = Number(process.env.CLUSTER_BENCH_SECONDS ?? (quick ? 8 : 40))
  const warmupSeconds = Number(process.env.CLUSTER_BENCH_WARMUP_SECONDS ?? (quick ? 3 : 10))
  const sizes = (process.env.CLUSTER_BENCH_INSTANCES ?? '1,2,3').split(',').map(Number)
  if (sizes.some((size) => !Number.isInteger(size) || size < 1)) throw new Error('CLUSTER_BENCH_INSTANCES: a list of instance counts ≥ 1, e.g. 1,2,3')
  const natsUrl = loopbackUrl(process.env.CLUSTER_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222', 'NATS')
  const adminUrl = loopbackUrl(process.env.CLUSTER_BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', 'PostgreSQL')
  const rawFrames = process.env.CLUSTER_BENCH_FRAMES === 'raw'
  if (pidsNamed('nats-server').length !== 1) throw new Error('cluster bench: expected one nats-server process on this machine (its CPU is reported)')
  const setup: Setup = {
    seedDir: trainedDataDir(),
    devices: Array.from({ length: deviceCount }, (_, i) => i + 1),
    // each device starts at its own batch of the cycle
    batches: frameBatches(rawFrames ? rawPiLines() : stringifiedPayloads(), FRAMES_PER_BATCH, DISTINCT_BODIES),
    periodMs: 1000 * FRAMES_PER_BATCH / FPS,
    warmupSeconds,
    seconds,
    idleSeconds: Number(process.env.CLUSTER_BENCH_IDLE_SECONDS ?? (quick ? 2 : 5)),
    natsUrl,
    adminUrl,
    client: new LoadClient()
  }
  const loadAtStart = loadavg()
  const results: ConfigurationResult[] = []
  try {
    for (const count of [0, ...sizes]) results.push(await measure(setup, count))
  } finally {
    setup.client.close()
    rmSync(setup.seedDir, { recursive: true, force: true })
  }

  const cores = (cpu: number, result: ConfigurationResult) => round(cpu / result.wallSeconds, 2)
  const table: BenchReport['table'] = results.map((result) => ({
    configuration: result.label,
    'frames/s offered': result.offered,
    'frames/s acked': round(result.acceptedPerS),
    'non-200 / errors': `${result.run.requests - result.run.ok} / ${result.run.errors}`,
    'p50 / p99 ms': `${round(result.run.serviceP50, 1)} / ${round(result.run.serviceP99, 1)}`,
    'cores: doorsense / nats / pg': `${cores(result.cpu.doorsense, result)} / ${cores(result.cpu.nats, result)} / ${cores(result.cpu.postgres, result)}`,
    'CPU ms/1k frames: doorsense': round(result.msPer1k.doorsense, 1),
    'CPU ms/1k frames: system': round(result.msPer1k.system, 1),
    'frames per core-s: doorsense / system': `${round(result.framesPerCoreSecond.doorsense)} / ${round(result.framesPerCoreSecond.system)}`,
    'door age p50 / p99 s': `${round(result.freshness.p50Ms / 1000, 2)} / ${round(result.freshness.p99Ms / 1000, 2)}`
  }))

  const notes = [
    `offered: ${deviceCount} devices × ${FPS} frames/s in batches of ${FRAMES_PER_BATCH} (one request a second each, an Idempotency-Key each), ` +
      'round-robin over the instances; frames: ' +
      `${rawFrames ? 'the raw Pi recording (another room: doors read unknown, not-calibrated)' : 'session A\'s rows, which the model learned'}; ` +
      `warm-up ${warmupSeconds} s, measured ${seconds} s per configuration; one run of each, in this order` +
      `${quick ? ' (QUICK mode: short durations, figures for iterating only)' : ''}`,
    `machine: 2 cores shared (other engineers' work included); load average ${loadAtStart.map((value) => value.toFixed(2)).join(' ')} at the start, ` +
      `${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end`,
    'p50 / p99: the frames route from the time each batch was sent (client side); CPU ms/1k frames: the processes\' /proc CPU over the measured run ' +
      '÷ frames acknowledged; system = doorsense + nats-server + postgres (embedded: doorsense alone)',
    'door age: now − lastFrameAt of each loaded door in GET /doors on the first instance, sampled once a second ' +
      '(a Pi sends once a second; a cluster\'s owner writes a door\'s rate and last frame to the bucket once a second)'
  ]
  const fit = perInstanceFit(results.filter((result) => result.instances > 0))
  if (fit) {
    const idle = mean(results.filter((result) => result.instances > 0).map((result) => result.cpu.idleCoresPerInstance))
    notes.push(
      `doorsense cores busy ≈ ${round(fit.intercept, 3)} + ${round(fit.slope, 3)} × instances (least squares over the clusters): each instance beyond ` +
        `the first costs ${round(fit.slope, 3)} cores at this load, of which ${round(idle, 3)} it costs idle (no frames: heartbeats, leases); ` +
        `the rest is mostly following every door's state on every instance (${deviceCount} doors' updates a second each)`
    )
  }
  for (const result of results) {
    notes.push(
      `${result.label}: acked ${result.run.framesAccepted} frames in ${round(result.run.elapsedSeconds, 1)} s ` +
        `(worst / median second ${Math.min(...result.run.perSecond)} / ${quantile([...result.run.perSecond].sort((a, b) => a - b), 0.5)}); ` +
        `status ${JSON.stringify(result.run.statusCodes)}, late ${result.run.late}; ` +
        `p99 from the intended send ${round(result.run.p99, 1)} ms, ` +
        `inside the servers p50 / p99 ${round(result.server.p50Ms, 1)} / ${round(result.server.p99Ms, 1)} ms; ` +
        `doorsense CPU s by instance ${result.cpu.doorsenseByInstance.map((cpu) => round(cpu, 1)).join(' ')}; ` +
        `idle ${round(result.cpu.idleCoresPerInstance, 3)} cores per instance before the load; ` +
        `load client ${round(result.cpu.client / result.wallSeconds, 2)} cores; machine busy ${round(result.machine.busyCores, 2)} of 2 cores ` +
        `(${round(result.machine.otherCores, 2)} besides these); load average ${result.machine.loadavgAfter.map((value) => value.toFixed(2)).join(' ')}; ` +
        `door age max ${round(result.freshness.maxMs / 1000, 2)} s, ${round(result.freshness.within2s * 100, 1)} % within 2 s ` +
        `over ${result.freshness.samples} samples (missing ${result.freshness.missing}; states seen ${JSON.stringify(result.freshness.states)})` +
        (result.lagAtEnd === null ? '' : `; consumer lag at the end ${result.lagAtEnd} batches; stream ${JSON.stringify(result.streamAtEnd)}`)
    )
  }
  return {
    name: 'cluster',
    table,
    notes,
    results: {
      quick,
      deviceCount,
      fps: FPS,
      framesPerBatch: FRAMES_PER_BATCH,
      frames: rawFrames ? 'raw Pi recording' : 'session A',
      partitions: PARTITIONS,
      seconds,
      warmupSeconds,
      loadAtStart,
      loadAtEnd: loadavg(),
      configurations: results
    }
  }
}
