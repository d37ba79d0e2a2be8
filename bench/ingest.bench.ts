/**
 * `npm run bench -- ingest`: a home-building's worth of Pis on one server.
 * INGEST_DEVICES (default 1,000) simulated devices, each posting its frames
 * at INGEST_FPS (20) frames/s in batches of 20 (one POST /server/post/frames
 * a second each, 1,000 requests/s offered), each batch with its own
 * Idempotency-Key as the agent sends it (INGEST_IDEMPOTENCY=0: without), to
 * a server in a child process (`bin/serve.ts`, free loopback port, temp
 * DATA_DIR) with session A's model trained and active, every device known
 * (a keep-alive each first) and live: every frame also moves its door through
 * the door-state pipeline.
 *
 * The devices run open-loop in a forked client process: each has its own
 * keep-alive socket and a random phase, sends at its time (one request in
 * flight per device, as the agent; a device still waiting for its answer
 * sends the next batch as soon as it has it, counted as late), and its
 * latency is counted from the time it meant to send. After a warm-up
 * (INGEST_WARMUP_SECONDS, 10) the run lasts INGEST_SECONDS (60).
 *
 * Reported: frames/s offered and accepted (sustained, per second of the
 * run), p50/p99/max, non-2xx, the server's CPU per 1,000 frames
 * (/proc/<pid>/stat), RSS, the database's bytes per stored frame (its size
 * after a clean stop against before, and per table from dbstat), and from
 * those the growth per hour and the steady state under
 * FRAME_RETENTION_HOURS (INGEST_RETENTION_HOURS, default 24) against what
 * the pruner can delete per hour. Then INGEST_PROFILE_SECONDS (15; 0 = skip)
 * of the same load on a fresh server under `--cpu-prof`: where its CPU goes
 * (SQLite, JSON, frame decoding, the door-state model, HTTP, ...), to say
 * what bounds the rate (INGEST_PROFILE_DIR keeps the profile). Then
 * retention under load: a fresh server whose database already holds
 * INGEST_BACKLOG (1,200,000: 60 s of 1,000 Pis)
 * frames two days old, under the same load for INGEST_RETENTION_SECONDS
 * (30; 0 = skip): how many frames a second the pruner deletes while frames
 * arrive, against how many arrive: whether retention keeps up at this scale.
 * INGEST_PREVIOUS_DESIGN=1 runs it all with REGISTRY_FLUSH_MS=0
 * WAL_CHECKPOINT_MS=0 (the design before). The frames are the raw Pi frames
 * of test/fixtures/csi/rpi-raw-frames.txt.
 */
import Database from 'better-sqlite3'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { PROJECT_ROOT } from '../core/project.js'
import {
  checkpointsOf, loopDelayOf, scrapeMetrics, serverQuantileMs, startChildServer, trainedDataDir, type Checkpoints, type ChildServer
} from './child-server.js'
import { ForkedClient, serveJobs } from './forked-client.js'
import { encodeBinaryFrames } from '../domain/frames.js'
import { DISTINCT_BODIES, frameBatches, framesBody, keepAliveBody } from './lib/bodies.js'
import { round } from './lib/format.js'
import { runPacedFrames, type PacedFramesJob, type PacedFramesResult } from './lib/paced-frames.js'
import { quantile } from './lib/quantile.js'
import { rawPiLines } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const ROLE_ENV = 'DOORSENSE_BENCH_INGEST_CLIENT'
const FRAMES_PER_BATCH = 20
const HOUR_MS = 3_600_000

// ---------------------------------------------------------------- client side

/** One server's frames route under the paced Pis (bench/lib/paced-frames.ts), and the window's length. */
async function runIngest (job: PacedFramesJob): Promise<PacedFramesResult & { seconds: number }> {
  return { seconds: job.seconds, ...await runPacedFrames(job) }
}

serveJobs<PacedFramesJob, PacedFramesResult & { seconds: number }>(ROLE_ENV, runIngest)

// ---------------------------------------------------------------- server side

/** The load client: this file forked. */
class IngestClient extends ForkedClient<PacedFramesJob, PacedFramesResult & { seconds: number }> {
  constructor () {
    super(import.meta.url, ROLE_ENV, 'ingest client')
  }
}

/** A keep-alive for each device, 32 at a time, so every device is known (a door) and live. */
async function announce (url: string, devices: number[]): Promise<void> {
  for (let i = 0; i < devices.length; i += 32) {
    await Promise.all(devices.slice(i, i + 32).map(async (id) => {
      const response = await fetch(`${url}/server/post/keep_alive`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: keepAliveBody(id)
      })
      if (!response.ok) throw new Error(`keep-alive of device ${id}: ${response.status} ${await response.text()}`)
    }))
  }
}

/** Bytes per table and index of a closed database file (SQLite's dbstat). */
function bytesPerTable (file: string): Record<string, number> {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as Array<{ name: string, bytes: number }>
    return Object.fromEntries(rows.map((row) => [row.name, row.bytes]))
  } catch {
    return {} // a build without dbstat
  } finally {
    db.close()
  }
}

/**
 * A copy of `seedDir` whose rpi_frames already hold `count` frames two days
 * old (past any retention window the bench uses), spread over `devices`
 * devices: a backlog for the pruner. A server started and stopped on it
 * first creates the tables (benchmarks use the engine, not the plugins).
 * The caller removes it.
 */
async function backlogDataDir (seedDir: string, count: number, devices: number): Promise<string> {
  const migrated = await startChildServer({ seedDir, label: 'ingest-backlog' })
  await migrated.stop()
  const db = new Database(join(migrated.dataDir, 'doorsense.sqlite'))
  try {
    // 424 bytes: 106 float32 features (layout 0), as every frame was stored before raw frames were kept as received
    db.prepare(`INSERT INTO rpi_frames (device, received_at, encoding, features)
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
      SELECT i % ? + 1, ?, 'raw', zeroblob(424) FROM n`).run(count, devices, Date.now() - 48 * HOUR_MS)
  } finally {
    db.close()
  }
  return migrated.dataDir
}

interface DeletedSample { at: number, deleted: number, loopMaxMs: number, checkpoints: Checkpoints }

/** The server's doorsense_frames_pruned_total and event-loop delay, once a second until `stop` resolves. */
async function sampleDeleted (url: string, stop: Promise<unknown>): Promise<DeletedSample[]> {
  const samples: DeletedSample[] = []
  const state = { done: false }
  stop.finally(() => { state.done = true }).catch(() => {})
  while (!state.done) {
    const text = await scrapeMetrics(url)
    samples.push({
      at: performance.now(),
      deleted: Number(/^doorsense_frames_pruned_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN),
      loopMaxMs: loopDelayOf(text).maxMs,
      checkpoints: checkpointsOf(text)
    })
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  return samples
}

function tableRows (file: string, table: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  } catch {
    return 0
  } finally {
    db.close()
  }
}

interface ProfileSummary {
  totalMs: number
  categories: Record<string, number>
  top: Array<{ function: string, where: string, ms: number, share: number }>
}

/** Where a .cpuprofile's samples went: self time by category and the functions that took the most. */
function summariseProfile (dir: string): ProfileSummary | undefined {
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: the newest of the main thread (0), not the checkpoint or training workers'
  const file = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile') && name.split('.')[4] === '0').sort().at(-1)
  if (!file) return undefined
  interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const byFunction = new Map<string, { function: string, where: string, us: number }>()
  const categories: Record<string, number> = {}
  let totalUs = 0
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    if (us === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    const category = categorise(functionName, url)
    if (category === 'idle') continue
    totalUs += us
    categories[category] = (categories[category] ?? 0) + us
    const where = url ? `${url.replace(/^file:\/\//, '').replace(PROJECT_ROOT + '/', '').replace(/^.*node_modules\//, '')}:${lineNumber + 1}` : '(native)'
    const key = `${functionName}@${where}`
    const entry = byFunction.get(key) ?? { function: functionName || '(anonymous)', where, us: 0 }
    entry.us += us
    byFunction.set(key, entry)
  }
  const top = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, 15)
    .map((entry) => ({ function: entry.function, where: entry.where, ms: round(entry.us / 1000), share: round(entry.us / totalUs, 3) }))
  return {
    totalMs: round(totalUs / 1000),
    categories: Object.fromEntries(Object.entries(categories).sort((a, b) => b[1] - a[1]).map(([name, us]) => [name, round(us / totalUs, 3)])),
    top
  }
}

/** A profile node's area, by where its code lives (native functions by name). */
function categorise (name: string, url: string): string {
  if (name === '(idle)' || name === '(program)' || name === '(root)') return 'idle'
  if (name === '(garbage collector)') return 'garbage collection'
  if (url.startsWith('node:internal/modules') || url.startsWith('node:internal/deps/cjs-module-lexer') ||
    url.includes('/tsx/') || url.includes('esbuild')) return 'module loading (start-up)'
  if (url.includes('better-sqlite3') || (!url && ['run', 'get', 'all', 'exec', 'pragma', 'prepare'].includes(name))) return 'SQLite'
  if (url.includes('domain/frames') || url.includes('domain/csi')) return 'frame decoding'
  if (url.includes('@tensorflow') || url.includes('/ml/') || url.includes('plugins/inference') ||
    url.includes('domain/door') || url.includes('domain/smoother')) return 'door state (model, windows, smoother)'
  if ((!url && name === 'parse') || url.includes('json-body') || url.includes('secure-json-parse')) return 'JSON parsing'
  if (url.includes('fast-json-stringify') || (!url && name === 'stringify')) return 'JSON serialising'
  if (url.includes('idempotency') || (!url && ['update', 'digest', 'randomUUID'].includes(name))) return 'idempotency keys'
  if (url.includes('ajv') || url.includes('strict-input')) return 'validation'
  if (url.includes('fastify') || url.includes('find-my-way') || url.includes('avvio') ||
    url.startsWith('node:_http') || url.startsWith('node:net') || url.startsWith('node:internal/stream') || url.startsWith('node:internal/streams') ||
    url.includes('light-my-request') || (!url && ['writev', 'writeUtf8String', 'writeBuffer'].includes(name))) return 'HTTP (Node, Fastify)'
  if (url.includes('plugins/doors') || url.includes('event-stream') || url.includes('home-assistant')) return 'doors, events'
  if (url.includes('plugins/rpi-servers') || url.includes('plugins/training')) return 'ingest (rpi-servers, captures)'
  if (url.includes('prom-client') || url.includes('core/metrics')) return 'metrics'
  return 'other'
}

/** One case of the formats phase: how the Pis send their frames. */
interface FormatCase {
  design: 'current' | 'before'
  /** binary-gzip: the bytes gzipped (`Content-Encoding: gzip`), as the agent sends them to a server that announces it. */
  format: 'json' | 'binary' | 'binary-gzip'
  perBatch: number
}

/** What one case measured on a fresh server. */
interface FormatResult extends FormatCase {
  offered: number
  accepted: number
  cpuMsPer1k: number
  /** Request body bytes per frame as sent (the HTTP headers left out). */
  bodyBytesPerFrame: number
  p50: number
  p99: number
  non2xx: number
  statusCodes: Record<string, number>
  errors: number
  /** With INGEST_FORMAT_PROFILE=1 (the server under --cpu-prof: slower, so its rates are not the others'): where its CPU went. */
  profile?: ProfileSummary
}

/**
 * JSON against binary batches (raw Pi frames as int8, `pi108`), plain and
 * gzipped, of 20 and of 100 frames (INGEST_FORMAT_BATCHES), with door
 * states on, each case on a fresh server under the same offered load
 * (INGEST_FORMAT_FPS a device, default INGEST_FPS: above what a format
 * takes, its ceiling) for `seconds` (after `warmupSeconds`): frames/s
 * accepted, the server's CPU per 1,000 frames and bytes per frame.
 * INGEST_FORMAT_PROFILE=1 runs each server under --cpu-prof and says where
 * its CPU went (slower: its rates are not to be read against a run
 * without). With
 * INGEST_BASELINE_ROOT (a checkout of the design before, e.g.
 * `git worktree add ../before <commit>` with its node_modules) the JSON
 * cases also run on its server, in the same run.
 */
async function formatsPhase (
  client: IngestClient,
  options: {
    devices: number[]
    fps: number
    perBatches: number[]
    profile: boolean
    seconds: number
    warmupSeconds: number
    env: Record<string, string>
    baselineRoot: string | undefined
  }
): Promise<{ table: BenchReport['table'], notes: string[], results: FormatResult[] }> {
  const { devices, fps, perBatches, profile, seconds, warmupSeconds, env, baselineRoot } = options
  const lines = rawPiLines()
  const seeds = { current: trainedDataDir(), before: baselineRoot === undefined ? undefined : trainedDataDir({}, baselineRoot) }
  const cases: FormatCase[] = []
  for (const perBatch of perBatches) {
    for (const design of ['current', 'before'] as const) {
      if (design === 'before' && baselineRoot === undefined) continue
      cases.push({ design, format: 'json', perBatch })
      if (design === 'current') cases.push({ design, format: 'binary', perBatch }, { design, format: 'binary-gzip', perBatch })
    }
  }
  const results: FormatResult[] = []
  try {
    for (const formatCase of cases) {
      const { design, format, perBatch } = formatCase
      const texts = frameBatches(lines, perBatch, DISTINCT_BODIES)
      const batches = format === 'json'
        ? texts
        : texts.map((text) => {
          const encoded = encodeBinaryFrames(JSON.parse(text) as number[][])
          if (!encoded) throw new Error('a recorded batch is not raw Pi frames')
          return Buffer.from(encoded.bytes).toString('base64')
        })
      const bodyBytes = format === 'json'
        ? texts.reduce((sum, text) => sum + Buffer.byteLength(framesBody(devices[0], text)), 0)
        : batches.reduce((sum, batch) => {
          const bytes = Buffer.from(batch, 'base64')
          return sum + (format === 'binary-gzip' ? gzipSync(bytes) : bytes).byteLength
        }, 0)
      const periodMs = 1000 * perBatch / fps
      const profileDir = profile ? mkdtempSync(join(tmpdir(), 'doorsense-bench-profile-')) : undefined
      const server = await startChildServer({
        seedDir: design === 'current' ? seeds.current : seeds.before,
        env,
        label: `ingest-${design}-${format}-${perBatch}`,
        root: design === 'current' ? undefined : baselineRoot,
        ...(profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {})
      })
      try {
        await announce(server.url, devices)
        const binary = format === 'json' ? undefined : 'pi108' as const
        const job = { urls: [server.url], devices, periodMs, batches, idempotency: true, binary, gzip: format === 'binary-gzip' }
        console.error(`ingest formats: ${design} ${format} batches of ${perBatch}, ${seconds} s …`)
        if (warmupSeconds > 0) await client.run({ ...job, seconds: warmupSeconds })
        const before = server.sample()
        const run = await client.run({ ...job, seconds })
        const after = server.sample()
        results.push({
          ...formatCase,
          offered: devices.length * fps,
          accepted: run.framesAccepted / run.elapsedSeconds,
          cpuMsPer1k: (after.cpuSeconds - before.cpuSeconds) * 1000 / Math.max(1, run.framesAccepted / 1000),
          bodyBytesPerFrame: bodyBytes / (batches.length * perBatch),
          p50: run.p50,
          p99: run.p99,
          non2xx: run.requests - run.ok,
          statusCodes: run.statusCodes,
          errors: run.errors
        })
      } finally {
        await server.dispose()
      }
      if (profileDir) {
        const summary = summariseProfile(profileDir)
        if (summary) results[results.length - 1].profile = summary
        rmSync(profileDir, { recursive: true, force: true })
      }
    }
  } finally {
    for (const dir of Object.values(seeds)) if (dir) rmSync(dir, { recursive: true, force: true })
  }
  const find = (design: FormatCase['design'], format: FormatCase['format'], perBatch: number) =>
    results.find((entry) => entry.design === design && entry.format === format && entry.perBatch === perBatch)
  const table: BenchReport['table'] = results.map((entry) => ({
    measure: `${entry.design === 'before' ? 'BEFORE: ' : ''}${entry.format} batches of ${entry.perBatch}: ` +
      'frames/s accepted, CPU ms per 1,000, body bytes per frame',
    value: `${round(entry.accepted)} / ${round(entry.cpuMsPer1k, 1)} / ${round(entry.bodyBytesPerFrame, 1)}`,
    note: `of ${round(entry.offered)} offered; p50/p99 ${round(entry.p50, 1)}/${round(entry.p99, 1)} ms; ` +
      `answers ${JSON.stringify(entry.statusCodes)}, ${entry.errors} errors`
  }))
  const notes: string[] = []
  for (const perBatch of perBatches) {
    const json = find('current', 'json', perBatch)
    const binary = find('current', 'binary', perBatch)
    const gzipped = find('current', 'binary-gzip', perBatch)
    const before = find('before', 'json', perBatch)
    if (json && gzipped) {
      notes.push(`batches of ${perBatch}: binary gzipped ${round(json.bodyBytesPerFrame / gzipped.bodyBytesPerFrame, 2)}× fewer body bytes than JSON, ` +
        `${round(gzipped.accepted / json.accepted, 2)}× its frames/s, ${round(gzipped.cpuMsPer1k / json.cpuMsPer1k, 2)}× its CPU per frame ` +
        `(${round(gzipped.cpuMsPer1k, 1)} µs a frame)`)
    }
    if (json && binary) {
      notes.push(`batches of ${perBatch}: binary ${round(json.bodyBytesPerFrame / binary.bodyBytesPerFrame, 2)}× fewer body bytes than JSON, ` +
        `${round(binary.accepted / json.accepted, 2)}× its frames/s, ${round(binary.cpuMsPer1k / json.cpuMsPer1k, 2)}× its CPU per frame ` +
        `(${round(binary.cpuMsPer1k, 1)} µs a frame, everything included)`)
    }
    if (before && binary && json) {
      notes.push(`batches of ${perBatch} against the design before (JSON): now JSON ${round(before.cpuMsPer1k / json.cpuMsPer1k, 2)}× less CPU per frame, ` +
        `binary ${round(before.cpuMsPer1k / binary.cpuMsPer1k, 2)}× less`)
    }
  }
  for (const entry of results) {
    if (!entry.profile) continue
    notes.push(`profile, ${entry.design} ${entry.format} batches of ${entry.perBatch}: ` +
      Object.entries(entry.profile.categories).map(([name, share]) => `${name} ${(share * 100).toFixed(1)} %`).join(', '))
  }
  return { table, notes, results }
}

export default async function ingestBench (): Promise<BenchReport> {
  const deviceCount = Number(process.env.INGEST_DEVICES ?? 1000)
  const fps = Number(process.env.INGEST_FPS ?? 20)
  const seconds = Number(process.env.INGEST_SECONDS ?? 60)
  const warmupSeconds = Number(process.env.INGEST_WARMUP_SECONDS ?? 10)
  const profileSeconds = Number(process.env.INGEST_PROFILE_SECONDS ?? 15)
  const retentionHours = Number(process.env.INGEST_RETENTION_HOURS ?? 24)
  const backlog = Number(process.env.INGEST_BACKLOG ?? 1_200_000)
  const retentionSeconds = Number(process.env.INGEST_RETENTION_SECONDS ?? 30)
  const idempotency = process.env.INGEST_IDEMPOTENCY !== '0'
  const devices = Array.from({ length: deviceCount }, (_, i) => i + 1)
  const periodMs = 1000 * FRAMES_PER_BATCH / fps
  const offered = deviceCount * fps
  // each device starts at its own batch of the cycle
  const batches = frameBatches(rawPiLines(), FRAMES_PER_BATCH, DISTINCT_BODIES)
  // INGEST_PREVIOUS_DESIGN=1: every keep-alive written at once, WAL checkpoints inside commits (before issue 15)
  const previousDesign = process.env.INGEST_PREVIOUS_DESIGN === '1'
  const env: Record<string, string> = {
    FRAME_RETENTION_HOURS: String(retentionHours),
    ...(previousDesign ? { REGISTRY_FLUSH_MS: '0', WAL_CHECKPOINT_MS: '0' } : {})
  }
  const formatSeconds = Number(process.env.INGEST_FORMAT_SECONDS ?? 15)
  // above what either format takes (e.g. 40 frames/s a device), the phase measures each one's ceiling
  const formatFps = Number(process.env.INGEST_FORMAT_FPS ?? fps)
  const formatBatches = (process.env.INGEST_FORMAT_BATCHES ?? '20,100').split(',').map(Number)
  const formatProfile = process.env.INGEST_FORMAT_PROFILE === '1'
  const baselineRoot = process.env.INGEST_BASELINE_ROOT
  if (process.env.INGEST_ONLY === 'formats') {
    const client = new IngestClient()
    try {
      const phase = {
        devices,
        fps: formatFps,
        perBatches: formatBatches,
        profile: formatProfile,
        seconds: formatSeconds,
        warmupSeconds: Math.min(warmupSeconds, 5),
        env,
        baselineRoot
      }
      const formats = await formatsPhase(client, phase)
      return {
        // a run above the default rate (each format's ceiling) keeps its own results file
        name: formatFps === fps ? 'ingest-formats' : `ingest-formats-${formatFps}fps`,
        table: formats.table,
        notes: [...formats.notes, `machine: load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (2 cores shared)`],
        results: { deviceCount, fps: formatFps, formatSeconds, baselineRoot, formats: formats.results, loadavg: loadavg() }
      }
    } finally {
      client.close()
    }
  }
  const seedDir = trainedDataDir()
  const seedBytes = statSync(join(seedDir, 'doorsense.sqlite')).size
  const client = new IngestClient()
  // INGEST_PROFILE_DIR keeps the .cpuprofile (open it in Chrome DevTools); by default it is summarised and removed
  const keptProfileDir = process.env.INGEST_PROFILE_DIR
  if (keptProfileDir) mkdirSync(keptProfileDir, { recursive: true })
  const profileDir = keptProfileDir ?? mkdtempSync(join(tmpdir(), 'doorsense-bench-profile-'))
  let server: ChildServer | undefined
  try {
    server = await startChildServer({ seedDir, env, label: 'ingest' })
    await announce(server.url, devices)
    console.error(
      `ingest: ${deviceCount} devices × ${fps} frames/s in batches of ${FRAMES_PER_BATCH} ` +
        `(${round(offered)} frames/s, ${round(deviceCount * 1000 / periodMs)} requests/s offered); warm-up ${warmupSeconds} s …`
    )
    if (warmupSeconds > 0) await client.run({ urls: [server.url], devices, seconds: warmupSeconds, periodMs, batches, idempotency })
    const metricsBefore = await scrapeMetrics(server.url)
    const before = server.sample()
    console.error(`ingest: measuring ${seconds} s …`)
    const run = await client.run({ urls: [server.url], devices, seconds, periodMs, batches, idempotency })
    const after = server.sample()
    const metricsAfter = await scrapeMetrics(server.url)
    const loop = loopDelayOf(metricsAfter)
    const checkpoints = checkpointsOf(metricsAfter)
    const serverP50 = serverQuantileMs(metricsBefore, metricsAfter, '/server/post/frames', 200, 0.5)
    const serverP99 = serverQuantileMs(metricsBefore, metricsAfter, '/server/post/frames', 200, 0.99)
    const file = join(server.dataDir, 'doorsense.sqlite')
    const exit = await server.stop()
    const framesStored = tableRows(file, 'rpi_frames')
    const keysStored = tableRows(file, 'idempotency_keys')
    const dbBytes = statSync(file).size
    const tables = bytesPerTable(file)
    const bytesPerFrame = (dbBytes - seedBytes) / Math.max(1, framesStored)
    await server.dispose()
    server = undefined

    let profile: ReturnType<typeof summariseProfile>
    if (profileSeconds > 0) {
      server = await startChildServer({ seedDir, env, label: 'ingest-profile', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] })
      await announce(server.url, devices)
      console.error(`ingest: the same load on a fresh server under --cpu-prof, ${profileSeconds} s …`)
      await client.run({ urls: [server.url], devices, seconds: profileSeconds, periodMs, batches, idempotency })
      await server.dispose()
      server = undefined
      profile = summariseProfile(profileDir)
    }

    let retention: {
      backlog: number,
      seconds: number,
      framesAccepted: number,
      elapsedSeconds: number,
      acceptedPerS: number,
      deletedBeforeLoad: number,
      deletedDuringLoad: number,
      drainedAfterS: number | undefined,
      deletedPerS: number,
      p99: number,
      perSecond: number[],
      samples: Awaited<ReturnType<typeof sampleDeleted>>
    } | undefined
    if (retentionSeconds > 0 && backlog > 0) {
      console.error(`ingest: retention under load: ${backlog} frames two days old in the database, the same load for ${retentionSeconds} s …`)
      const backlogDir = await backlogDataDir(seedDir, backlog, deviceCount)
      try {
        server = await startChildServer({ seedDir: backlogDir, env, label: 'ingest-retention' })
      } finally {
        rmSync(backlogDir, { recursive: true, force: true })
      }
      await announce(server.url, devices)
      const load = client.run({ urls: [server.url], devices, seconds: retentionSeconds, periodMs, batches, idempotency })
      const samples = await sampleDeleted(server.url, load)
      const loaded = await load
      await server.dispose()
      server = undefined
      // the round that starts with the server runs before the load too: count from the load's first second
      const start = samples[0]
      const drained = samples.find((sample) => sample.deleted >= backlog)
      const last = drained ?? samples[samples.length - 1]
      const busySeconds = (last.at - start.at) / 1000
      retention = {
        backlog,
        seconds: retentionSeconds,
        framesAccepted: loaded.framesAccepted,
        elapsedSeconds: loaded.elapsedSeconds,
        acceptedPerS: loaded.framesAccepted / loaded.elapsedSeconds,
        deletedBeforeLoad: start.deleted,
        deletedDuringLoad: last.deleted - start.deleted,
        drainedAfterS: drained ? busySeconds : undefined,
        deletedPerS: busySeconds > 0 ? (last.deleted - start.deleted) / busySeconds : Number.NaN,
        p99: loaded.p99,
        perSecond: loaded.perSecond,
        samples
      }
    }

    // over the time the answers took: an overloaded server answers well after the window's end
    const accepted = run.framesAccepted / run.elapsedSeconds
    const sustained = [...run.perSecond].sort((a, b) => a - b)
    const cpuSeconds = after.cpuSeconds - before.cpuSeconds
    const cpuMsPer1k = cpuSeconds * 1000 / Math.max(1, run.framesAccepted / 1000)
    const perHourBytes = accepted * 3600 * bytesPerFrame
    const steadyBytes = perHourBytes * retentionHours
    const prunePerHour = retention ? retention.deletedPerS * 3600 : Number.NaN
    const acceptedPerHour = accepted * 3600
    const gib = (bytes: number) => round(bytes / 1024 ** 3, 2)
    const table: BenchReport['table'] = [
      {
        measure: 'frames/s offered',
        value: round(offered),
        note: `${deviceCount} devices × ${fps}/s, batches of ${FRAMES_PER_BATCH}, ${round(deviceCount * 1000 / periodMs)} requests/s`
      },
      {
        measure: 'frames/s accepted (mean)',
        value: round(accepted),
        note: `${run.framesAccepted} answered in ${round(run.elapsedSeconds, 1)} s ` +
          `(the ${seconds} s window and the answers still owed at its end); ${run.framesRejected} rejected`
      },
      {
        measure: 'frames/s accepted (worst second, median second)',
        value: `${round(sustained[0] ?? 0)} / ${round(quantile(sustained, 0.5))}`,
        note: 'per whole second of the run'
      },
      {
        measure: 'requests: 200 / other / errors / late',
        value: `${run.ok} / ${run.requests - run.ok} / ${run.errors} / ${run.late}`,
        note: JSON.stringify(run.statusCodes)
      },
      {
        measure: 'latency p50 / p99 / max, ms',
        value: `${round(run.p50, 1)} / ${round(run.p99, 1)} / ${round(run.max, 0)}`,
        note: `from the time each device meant to send; p99 from the time it sent: ${round(run.serviceP99, 1)} ms`
      },
      {
        measure: 'inside the server p50 / p99, ms (bucket bounds)',
        value: `${round(serverP50, 1)} / ${round(serverP99, 1)}`,
        note: `its http_request_duration_seconds; event loop delay p99 ${round(loop.p99Ms, 0)} ms, max ${round(loop.maxMs, 0)} ms`
      },
      {
        measure: 'server CPU per 1,000 frames, ms',
        value: round(cpuMsPer1k, 1),
        note: `${round(cpuSeconds / seconds, 2)} cores busy on average (/proc/<pid>/stat)`
      },
      {
        measure: 'server RSS MiB, fds (start -> end)',
        value: `${before.rssMiB} -> ${after.rssMiB}, ${before.fds} -> ${after.fds}`,
        note: `${after.threads} threads`
      },
      {
        measure: 'database bytes per stored frame',
        value: round(bytesPerFrame),
        note: `${framesStored} frames and ${keysStored} idempotency keys stored; ` +
          `file ${round(dbBytes / 1024 ** 2, 1)} MiB after a clean stop (exit ${exit})`
      },
      {
        measure: 'database growth per hour at the accepted rate, GiB',
        value: gib(perHourBytes),
        note: `until the retention window (FRAME_RETENTION_HOURS=${retentionHours}) is full`
      },
      {
        measure: `steady state with ${retentionHours} h retention, GiB`,
        value: gib(steadyBytes),
        note: !retention
          ? 'retention under load not measured (INGEST_RETENTION_SECONDS=0)'
          : retention.deletedPerS >= retention.acceptedPerS
            ? `reached: the pruner deleted ${round(retention.deletedPerS)} frames/s while ${round(retention.acceptedPerS)} arrived`
            : `NOT reached: the pruner deleted ${round(retention.deletedPerS)} frames/s while ${round(retention.acceptedPerS)} arrived`
      }
    ]
    if (retention) {
      const drainedNote = retention.drainedAfterS === undefined
        ? ` (the ${retention.seconds} s window and its owed answers, ${round(retention.elapsedSeconds, 1)} s; not drained)`
        : `, drained after ${round(retention.drainedAfterS, 1)} s`
      table.push({
        measure: 'retention under load: frames deleted / accepted per s',
        value: `${round(retention.deletedPerS)} / ${round(retention.acceptedPerS)}`,
        note: `a backlog of ${retention.backlog} old frames under the same load: ` +
          `${retention.deletedBeforeLoad} deleted before the load began, ${retention.deletedDuringLoad} during it${drainedNote}; ` +
          `frames p99 meanwhile ${round(retention.p99, 1)} ms`
      })
    }
    const notes = [
      `${previousDesign ? 'PREVIOUS DESIGN (REGISTRY_FLUSH_MS=0 WAL_CHECKPOINT_MS=0); ' : ''}` +
        `machine: load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (2 cores shared; the client runs on the same machine)`,
      `database bytes per table/index after the run: ${Object.entries(tables).map(([name, bytes]) => `${name} ${round(bytes / 1024 ** 2, 1)} MiB`).join(', ')}`,
      `accepted frames per second of the run: ${run.perSecond.join(' ')}`,
      `WAL checkpoints during the run and before: ${checkpoints.worker} on the checkpoint thread, ` +
        `${checkpoints.main} remainders finished between requests (longest ${round(checkpoints.mainMaxMs, 1)} ms)`
    ]
    if (retention) {
      notes.push(
        `retention under load, per second: frames accepted ${retention.perSecond.join(' ')}; ` +
          `frames deleted ${retention.samples.slice(1).map((sample, i) => sample.deleted - retention.samples[i].deleted).join(' ')}; ` +
          `event-loop max ms ${retention.samples.map((sample) => round(sample.loopMaxMs, 0)).join(' ')}; ` +
          `checkpoints at the end ${JSON.stringify(retention.samples.at(-1)?.checkpoints)}`
      )
    }
    if (profile) {
      notes.push(
        `profile (${profileSeconds} s and the start-up, ${profile.totalMs} ms of main-thread samples, idle left out; ` +
          'a sample lands where the thread was, on the CPU or blocked in a call), ' +
          `share by area: ${Object.entries(profile.categories).map(([name, share]) => `${name} ${(share * 100).toFixed(1)} %`).join(', ')}`
      )
      notes.push(`top functions (self time): ${profile.top.map((entry) => `${entry.function} ${entry.where} ${(entry.share * 100).toFixed(1)} %`).join('; ')}`)
    }
    return {
      name: 'ingest',
      table,
      notes,
      results: {
        deviceCount,
        fps,
        seconds,
        warmupSeconds,
        idempotency,
        retentionHours,
        retention,
        previousDesign,
        offered,
        run,
        cpu: { seconds: cpuSeconds, msPer1kFrames: cpuMsPer1k, before, after },
        database: { seedBytes, dbBytes, framesStored, keysStored, bytesPerFrame, tables, perHourBytes, steadyBytes, prunePerHour, acceptedPerHour },
        server: { p50Ms: serverP50, p99Ms: serverP99, loop, checkpoints },
        profile,
        loadavg: loadavg()
      }
    }
  } finally {
    client.close()
    await server?.dispose()
    rmSync(seedDir, { recursive: true, force: true })
    if (!keptProfileDir) rmSync(profileDir, { recursive: true, force: true })
  }
}
