/**
 * A doorsense server in a child process for the benchmarks that must see the
 * server as the Pis do (its own event loop, RSS, file descriptors and CPU
 * time): `bin/serve.ts` on a free loopback port with a temp DATA_DIR, a model
 * trained into that DATA_DIR by the CLI beforehand, and what /proc says about
 * the process. The test fixtures (test/fixtures/serve-process.ts) do the same
 * for tests; the house rules keep bench/ from importing test/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../core/project.js'
import { SESSION_A } from './lib/recordings.js'

export const ADMIN_TOKEN = 'bench-admin-token-0123456789'

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on every Linux this runs on). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** What /proc says about a process at one moment. */
export interface ProcessSample {
  /** Seconds since the server started listening. */
  second: number
  rssMiB: number
  fds: number
  threads: number
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number
}

/** Reads RSS, open descriptors, threads and CPU time of `pid` from /proc. */
export function sampleProcess (pid: number, since: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN)
  return {
    second: Math.round((performance.now() - since) / 1000),
    rssMiB: Math.round(field('VmRSS') / 102.4) / 10,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads: field('Threads'),
    cpuSeconds: cpuSeconds(pid)
  }
}

/** User + system CPU seconds of `pid` (fields 14 and 15 of /proc/<pid>/stat, after the parenthesised name). */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** A port that was free on 127.0.0.1 a moment ago. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A DATA_DIR holding session A's samples and the default model trained on
 * them and active (`doorsense train --data`, the CLI's path), to copy for
 * each server. The caller removes it.
 */
export function trainedDataDir (env: Record<string, string> = {}, root = PROJECT_ROOT): string {
  const dir = mkdtempSync(join(tmpdir(), 'doorsense-bench-seed-'))
  const started = performance.now()
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'bin/doorsense.ts', 'train', '--data', SESSION_A, '--json'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dir, TF_BACKEND: 'cpu', ...env },
    encoding: 'utf8'
  })
  if (result.status !== 0) throw new Error(`doorsense train failed (${result.status}): ${result.stderr}`)
  const summary = JSON.parse(result.stdout) as { version: string }
  console.error(`model ${summary.version} trained on session A in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return dir
}

/** A running child server. */
export interface ChildServer {
  url: string
  pid: number
  dataDir: string
  /** performance.now() when it answered its first request. */
  startedAt: number
  child: ChildProcess
  /** What it wrote so far (stdout and stderr: warnings and errors, LOG_LEVEL is warn). */
  output: () => string
  /** RSS, descriptors, threads and CPU now. */
  sample: () => ProcessSample
  /** Bytes of the SQLite file and its WAL. */
  databaseBytes: () => number
  /** SIGTERM (a graceful close), waits for the exit; resolves with the exit code or signal. */
  stop: () => Promise<number | string>
  /** stop() if still running, then removes DATA_DIR. */
  dispose: () => Promise<void>
}

/** The server scripts a benchmark may start (paths from the project root). */
export const SERVER_SCRIPT = 'bin/serve.ts'
/** bench/overhead.bench.ts's denominator: a bare Fastify serving liveness and echo. */
export const BARE_SERVER_SCRIPT = 'bench/bare-server.ts'
/** bench/overhead.bench.ts's doorsense with per-request parts left out (OVERHEAD_WITHOUT). */
export const OVERHEAD_SERVER_SCRIPT = 'bench/overhead-server.ts'

/**
 * Starts `bin/serve.ts` (or `script`) on a copy of `seedDir` (or an empty DATA_DIR), on a
 * free 127.0.0.1 port, with `env` added (and `nodeArgs` before the script:
 * `--cpu-prof`, …); resolves once it answers
 * /debug/get/exists. Request logging off (LOG_LEVEL=warn): each logged
 * request would cost more than most routes themselves.
 */
export async function startChildServer (options: {
  seedDir?: string
  env?: Record<string, string>
  label: string
  nodeArgs?: string[]
  /** The checkout whose server runs (default this one): another design, measured in the same run. */
  root?: string
  /** The script to run, from the root (default SERVER_SCRIPT). */
  script?: string
}): Promise<ChildServer> {
  const dataDir = mkdtempSync(join(tmpdir(), `doorsense-bench-${options.label}-`))
  if (options.seedDir) cpSync(options.seedDir, dataDir, { recursive: true })
  const port = await freePort()
  const child = spawn(process.execPath, [...options.nodeArgs ?? [], '--import', 'tsx', options.script ?? SERVER_SCRIPT], {
    cwd: options.root ?? PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      LOG_TO_FILE: 'false',
      TF_BACKEND: 'cpu',
      ...options.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const keep = (chunk: string) => { output = (output + chunk).slice(-100_000) }
  child.stdout?.setEncoding('utf8').on('data', keep)
  child.stderr?.setEncoding('utf8').on('data', keep)
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before answering: ${output}`)
    try {
      if ((await fetch(`${url}/debug/get/exists`)).ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not answer within 60 s: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const startedAt = performance.now()
  const pid = child.pid as number
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    return await exited
  }
  return {
    url,
    pid,
    dataDir,
    startedAt,
    child,
    output: () => output,
    sample: () => sampleProcess(pid, startedAt),
    databaseBytes: () => {
      const file = join(dataDir, 'doorsense.sqlite')
      let bytes = 0
      for (const path of [file, `${file}-wal`]) {
        try {
          bytes += statSync(path).size
        } catch {
          // no WAL after a clean close
        }
      }
      return bytes
    },
    stop,
    dispose: async () => {
      await stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/** The server's /metrics text (retried for up to 30 s while an overloaded server sheds load with 503). */
export async function scrapeMetrics (url: string): Promise<string> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const response = await fetch(`${url}/metrics`)
    const text = await response.text()
    if (response.ok || Date.now() > deadline) return text
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** The event-loop delay since the previous scrape (prom-client resets its histogram on each). */
export interface LoopDelay {
  maxMs: number
  p99Ms: number
}

export function loopDelayOf (metrics: string): LoopDelay {
  const seconds = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN)
  return { maxMs: seconds('nodejs_eventloop_lag_max_seconds') * 1000, p99Ms: seconds('nodejs_eventloop_lag_p99_seconds') * 1000 }
}

/** WAL checkpoints the server ran on its checkpoint thread, remainders it finished between requests, and the longest of those. */
export interface Checkpoints {
  worker: number
  main: number
  mainMaxMs: number
}

export function checkpointsOf (metrics: string): Checkpoints {
  const count = (thread: string) => Number(new RegExp(`^doorsense_wal_checkpoints_total\\{thread="${thread}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0)
  const mainMax = Number(/^doorsense_wal_checkpoint_main_max_seconds ([0-9.e+-]+)$/m.exec(metrics)?.[1] ?? Number.NaN)
  return { worker: count('worker'), main: count('main'), mainMaxMs: mainMax * 1000 }
}

/**
 * The `q`-quantile (ms) of the server's own http_request_duration_seconds for
 * `route` and `status` between two scrapes: the upper bound of the bucket it
 * falls in (the time inside the server, from its first byte read to its last
 * written; no client or kernel queue). Given one scrape per instance of a
 * cluster (same order before and after), the instances' buckets are summed.
 */
export function serverQuantileMs (before: string | readonly string[], after: string | readonly string[], route: string, status: number, q: number): number {
  const buckets = (metrics: string) => {
    const pattern = new RegExp(
      '^http_request_duration_seconds_bucket\\{(?=[^}]*le="([^"]+)")' +
        `(?=[^}]*route="${route.replace(/[/]/g, '\\/')}")(?=[^}]*status_code="${status}")[^}]*\\} (\\d+)$`,
      'gm'
    )
    return new Map([...metrics.matchAll(pattern)].map((match) => [match[1], Number(match[2])]))
  }
  const befores = typeof before === 'string' ? [before] : before
  const afters = typeof after === 'string' ? [after] : after
  const counts = new Map<string, number>()
  afters.forEach((text, i) => {
    const start = buckets(befores[i] ?? '')
    for (const [le, count] of buckets(text)) counts.set(le, (counts.get(le) ?? 0) + count - (start.get(le) ?? 0))
  })
  const end = [...counts].map(([le, count]) => ({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count }))
    .sort((a, b) => a.le - b.le)
  const total = end.at(-1)?.count ?? 0
  if (total === 0) return Number.NaN
  return (end.find((bucket) => bucket.count >= q * total)?.le ?? Number.POSITIVE_INFINITY) * 1000
}
