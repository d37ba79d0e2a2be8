import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../../core/config.js'
import { LOG_DIR } from '../../core/logger.js'
import { isAlive, readPid } from '../../core/pid-file.js'

/** The server's entry, relative to the project root. */
export const SERVER_ENTRY = 'bin/serve.ts'

/** The liveness route the redeploy, the watchdog and the Docker HEALTHCHECK ask. */
export const HEALTH_PATH = '/debug/get/exists'

/** File (in DATA_DIR/logs) that receives the stdout/stderr of servers started detached. */
export const SERVER_OUTPUT_LOG = 'server-output.log'

/** Past this size the output log is moved to `.1` when a server starts, so it cannot grow forever. */
const OUTPUT_LOG_MAX_BYTES = 20 * 1024 * 1024

/** The command line of a process (Linux /proc), or undefined where /proc is not available. */
export function processCommandLine (pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '')
  } catch {
    return undefined
  }
}

/** Whether this system has Linux's /proc (the process checks fall back to kill(pid, 0) without it). */
const HAS_PROC = (() => {
  try {
    return statSync('/proc/self').isDirectory()
  } catch {
    return false
  }
})()

/** Whether `pid` is running (alive and not a zombie waiting to be reaped). */
export function isRunning (pid: number): boolean {
  if (!isAlive(pid)) return false
  if (!HAS_PROC) return true
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false
  }
  // the state follows the command name, which is in parentheses and may hold spaces
  return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z'
}

/**
 * Whether `pid` is a running doorsense server. A pid file can outlive its
 * server and the pid be reused by anything, so the command line must name
 * bin/serve.ts; where /proc is missing, being alive is all that can be checked.
 */
export function isDoorsenseServer (pid: number): boolean {
  if (!isRunning(pid)) return false
  if (!HAS_PROC) return true
  const commandLine = processCommandLine(pid)
  return commandLine !== undefined && commandLine.some((arg) => arg.endsWith(SERVER_ENTRY))
}

/** The pid in the pid file if it names a running doorsense server. */
export function liveServerPid (pidFile: string): number | undefined {
  const pid = readPid(pidFile)
  return pid !== undefined && isDoorsenseServer(pid) ? pid : undefined
}

/**
 * The environment a running process was started with (Linux /proc; readable
 * for processes of the same user), or undefined.
 */
export function processEnvironment (pid: number): Record<string, string> | undefined {
  let raw: string
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8')
  } catch {
    return undefined
  }
  const env: Record<string, string> = {}
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=')
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

/** The URL of the liveness route of a server configured by `config`, always asked on loopback when it binds every address. */
export function healthUrl (config: Pick<Config, 'HOST' | 'PORT'>): string {
  let host = config.HOST
  if (host === '0.0.0.0') host = '127.0.0.1'
  else if (host === '::') host = '::1'
  if (host.includes(':')) host = `[${host}]`
  return `http://${host}:${config.PORT}${HEALTH_PATH}`
}

/** The answer of one liveness check. */
export interface HealthCheck {
  ok: boolean
  /** what went wrong, when not ok */
  problem?: string
  ms: number
}

/** One GET of the liveness route, given up after `timeoutMs`. */
export async function checkHealth (url: string, timeoutMs: number): Promise<HealthCheck> {
  const started = performance.now()
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await response.arrayBuffer()
    const ms = performance.now() - started
    return response.ok ? { ok: true, ms } : { ok: false, problem: `answered HTTP ${response.status}`, ms }
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code
    const problem = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause ?? (err as Error).message)
    return { ok: false, problem, ms: performance.now() - started }
  }
}

/** A server started detached. */
export interface StartedServer {
  pid: number
  /** the output log it writes to */
  logFile: string
  /** where its output starts in the log, to show only this start's lines on failure */
  logOffset: number
  /** exit code (or signal name) once it has exited; undefined while it runs */
  exit: () => number | string | undefined
}

/**
 * Starts `node --import tsx bin/serve.ts` detached in its own session, with
 * stdout/stderr appended straight to DATA_DIR/logs/server-output.log: the
 * server outlives the redeploy or watchdog that starts it, so its output must
 * not go through a pipe to them.
 */
export function startServerDetached (options: { projectRoot: string, dataDir: string, env: Record<string, string | undefined> }): StartedServer {
  const logFile = join(options.dataDir, LOG_DIR, SERVER_OUTPUT_LOG)
  mkdirSync(dirname(logFile), { recursive: true })
  let logOffset = 0
  try {
    logOffset = statSync(logFile).size
    if (logOffset > OUTPUT_LOG_MAX_BYTES) {
      renameSync(logFile, `${logFile}.1`)
      logOffset = 0
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const fd = openSync(logFile, 'a')
  let exitState: number | string | undefined
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER_ENTRY], {
      cwd: options.projectRoot,
      env: { ...options.env, DATA_DIR: options.dataDir },
      detached: true,
      stdio: ['ignore', fd, fd]
    })
    if (child.pid === undefined) throw new Error(`could not start ${process.execPath} --import tsx ${SERVER_ENTRY}`)
    child.on('exit', (code, signal) => { exitState = code ?? signal ?? 'unknown' })
    child.on('error', () => { exitState = exitState ?? 'spawn error' })
    child.unref()
    return { pid: child.pid, logFile, logOffset, exit: () => exitState }
  } finally {
    closeSync(fd)
  }
}

/** The output a started server wrote since it started, at most the last `maxBytes`. */
export function outputSince (server: Pick<StartedServer, 'logFile' | 'logOffset'>, maxBytes = 4096): string {
  try {
    const text = readFileSync(server.logFile).subarray(server.logOffset).toString('utf8')
    return text.length > maxBytes ? `…${text.slice(-maxBytes)}` : text
  } catch {
    return ''
  }
}

/** The output of a started server as indented lines for a log, or '' when it wrote nothing. */
export function describeOutput (server: Pick<StartedServer, 'pid' | 'logFile' | 'logOffset'>): string {
  const output = outputSince(server).trimEnd()
  return output === '' ? '' : `output of pid ${server.pid}:\n${output.split('\n').map((line) => `  | ${line}`).join('\n')}`
}

/** How waiting for a started server ended. */
export type HealthWait =
  | { healthy: true, ms: number }
  | { healthy: false, ms: number, problem: string }

/**
 * Polls the liveness route until it answers 200 and the pid file names the
 * started server (so an answer from some other process does not count), the
 * server exits, or `timeoutMs` passes.
 */
export async function waitUntilHealthy (
  options: { url: string, pidFile: string, server: StartedServer, timeoutMs: number, pollMs?: number }
): Promise<HealthWait> {
  const started = performance.now()
  const deadline = started + options.timeoutMs
  let last = 'not asked yet'
  while (performance.now() < deadline) {
    const exit = options.server.exit()
    if (exit !== undefined || !isRunning(options.server.pid)) {
      return { healthy: false, ms: performance.now() - started, problem: `the server exited (${exit ?? 'gone'}) before it was healthy` }
    }
    const check = await checkHealth(options.url, Math.min(2000, Math.max(100, deadline - performance.now())))
    if (check.ok && readPid(options.pidFile) === options.server.pid) return { healthy: true, ms: performance.now() - started }
    last = check.ok ? `the pid file does not name pid ${options.server.pid}` : `${options.url}: ${check.problem}`
    await sleep(options.pollMs ?? 100)
  }
  return { healthy: false, ms: performance.now() - started, problem: `not healthy within ${Math.round(options.timeoutMs / 1000)} s (last: ${last})` }
}

/** How a server was stopped. */
export type StopOutcome = 'not-running' | 'terminated' | 'killed'

/**
 * SIGTERM (the server finishes in-flight requests and removes its pid file),
 * then SIGKILL once `timeoutMs` has passed. SIGCONT follows SIGTERM so a
 * stopped (SIGSTOP, hung in a debugger) process gets to handle it.
 * @throws when the process survives SIGKILL (not ours to kill)
 */
export async function stopProcess (pid: number, timeoutMs: number): Promise<StopOutcome> {
  if (!isRunning(pid)) return 'not-running'
  signal(pid, 'SIGTERM')
  signal(pid, 'SIGCONT')
  if (await waitForExit(pid, timeoutMs)) return 'terminated'
  signal(pid, 'SIGKILL')
  if (await waitForExit(pid, 5000)) return 'killed'
  throw new Error(`pid ${pid} is still running after SIGKILL`)
}

function signal (pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

async function waitForExit (pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (isRunning(pid)) {
    if (performance.now() >= deadline) return false
    await sleep(25)
  }
  return true
}
