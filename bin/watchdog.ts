#!/usr/bin/env -S node --import tsx
/**
 * bin/watchdog (`npm run watchdog`): one check of the server, meant for cron
 * every minute (deploy/crontab) or the systemd timer (deploy/systemd/).
 *
 * If the pid file names no running doorsense process, the server is started
 * again, detached, with this process's environment (run it with the server's
 * env file), from the code as it is: it never pulls. If the process runs but
 * GET /debug/get/exists fails on N consecutive checks (counted in
 * DATA_DIR/watchdog-state.json), it is stopped (SIGTERM, then SIGKILL) and
 * started again. A 503 is a server shedding load for a moment, not a dead
 * one: it is asked again after the Retry-After wait (up to
 * SHED_RETRIES times) before the check counts as failed. While a redeploy
 * holds its lock the server is left to it.
 *
 * Exit codes: 0 healthy, restarted and healthy, or left to a running
 * redeploy · 1 bad usage or configuration · 2 unhealthy, counted, not
 * restarted yet · 3 restarted, but the server did not come up healthy.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../core/config.js'
import { PROJECT_ROOT } from '../core/project.js'
import { pidFilePath, readPid } from '../core/pid-file.js'
import { startOps, type OpsFlags } from './lib/ops-cli.js'
import { createOpsLog, errorText, seconds, type OpsLog } from './lib/ops-log.js'
import { redeployHolder } from '../core/redeploy-lock.js'
import { runCommand } from './lib/run-command.js'
import {
  checkHealth, healthUrl, liveServerPid, describeOutput, SERVER_ENTRY, startServerDetached, stopProcess, waitUntilHealthy, type HealthCheck
} from './lib/server-process.js'
import { RETRY_AFTER_S } from '../core/errors.js'

const EXIT = { HEALTHY: 0, USAGE: 1, COUNTED: 2, RESTART_FAILED: 3 } as const

const USAGE = `usage: npm run watchdog -- [options]   (node --import tsx bin/watchdog.ts [options])
  --failures N        consecutive failed checks before a live server is restarted (3)  env WATCHDOG_FAILURES
  --timeout S         seconds one check waits for an answer (5)                         env WATCHDOG_TIMEOUT_S
  --start-timeout S   seconds a restarted server gets to answer (60)                    env WATCHDOG_START_TIMEOUT_S
  --stop-timeout S    seconds between SIGTERM and SIGKILL for a hung server (15)        env WATCHDOG_STOP_TIMEOUT_S
  --restart-cmd CMD   restart with this command instead of starting the server itself
                      (systemd: "systemctl restart doorsense.service")                 env WATCHDOG_RESTART_CMD
The server settings (PORT, HOST, DATA_DIR, …) come from this environment.
exit: 0 healthy or restarted · 1 usage/config · 2 unhealthy, counted · 3 restart failed`

/** The consecutive-failure count, kept between runs in DATA_DIR. */
interface WatchdogState {
  consecutiveFailures: number
  lastCheckAt?: string
  lastProblem?: string
  lastRestartAt?: string
  lastRestartPid?: number
}

interface WatchdogOptions {
  failures: number
  timeoutMs: number
  startTimeoutMs: number
  stopTimeoutMs: number
  restartCmd?: string
}

/** The state file's name inside DATA_DIR. */
const STATE_FILE = 'watchdog-state.json'

/** How many times a 503 (load shedding) is asked again before the check counts as failed. */
const SHED_RETRIES = 3
/** The wait before asking again: the server's own Retry-After. */
const SHED_RETRY_WAIT_MS = RETRY_AFTER_S * 1000

/**
 * One liveness check; a 503 (the server shedding load while its event loop
 * catches up) is asked again after a short wait, up to {@link SHED_RETRIES}
 * times, and only a last answer that is still a failure counts.
 */
async function checkLiveness (url: string, timeoutMs: number, log: OpsLog): Promise<HealthCheck> {
  let check = await checkHealth(url, timeoutMs)
  for (let retry = 1; retry <= SHED_RETRIES && isShedding(check); retry++) {
    log.info(`GET ${url} answered 503 (shedding load): asking again in ${seconds(SHED_RETRY_WAIT_MS)} (${retry} of ${SHED_RETRIES})`)
    await sleep(SHED_RETRY_WAIT_MS)
    check = await checkHealth(url, timeoutMs)
  }
  return check
}

/** Whether a failed check was a 503 (checkHealth words it "answered HTTP 503"). */
function isShedding (check: HealthCheck): boolean {
  return !check.ok && /\bHTTP 503\b/.test(check.problem ?? '')
}

/** The flags, each with its WATCHDOG_* variable as the fallback. */
function watchdogOptions (flags: OpsFlags): WatchdogOptions {
  return {
    failures: flags.count('failures', 'WATCHDOG_FAILURES', 3),
    timeoutMs: flags.milliseconds('timeout', 'WATCHDOG_TIMEOUT_S', 5),
    startTimeoutMs: flags.milliseconds('start-timeout', 'WATCHDOG_START_TIMEOUT_S', 60),
    stopTimeoutMs: flags.milliseconds('stop-timeout', 'WATCHDOG_STOP_TIMEOUT_S', 15),
    restartCmd: flags.text('restart-cmd', 'WATCHDOG_RESTART_CMD')
  }
}

function readState (file: string): WatchdogState {
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as Partial<WatchdogState>
    return { ...state, consecutiveFailures: Number.isInteger(state.consecutiveFailures) ? state.consecutiveFailures as number : 0 }
  } catch {
    // missing or unreadable: start counting afresh, a bad count must not block a restart
    return { consecutiveFailures: 0 }
  }
}

function writeState (file: string, state: WatchdogState): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

async function main (argv: string[]): Promise<number> {
  const started = startOps('watchdog', argv, USAGE, {
    failures: 'string',
    timeout: 'string',
    'start-timeout': 'string',
    'stop-timeout': 'string',
    'restart-cmd': 'string'
  }, watchdogOptions)
  if (typeof started === 'number') return started
  const { options, config } = started
  const log = createOpsLog('watchdog')
  const stateFile = join(config.DATA_DIR, STATE_FILE)
  const state = readState(stateFile)
  const now = new Date().toISOString()

  const redeploy = redeployHolder(config.DATA_DIR)
  if (redeploy !== undefined) {
    log.info(`redeploy pid ${redeploy} is running: leaving the server to it`)
    return EXIT.HEALTHY
  }

  const pidFile = pidFilePath(config.DATA_DIR)
  const url = healthUrl(config)
  const pid = liveServerPid(pidFile)
  if (pid !== undefined) {
    const check = await checkLiveness(url, options.timeoutMs, log)
    if (check.ok) {
      if (state.consecutiveFailures > 0) log.info(`recovered after ${state.consecutiveFailures} failed check(s)`)
      writeState(stateFile, { ...state, consecutiveFailures: 0, lastCheckAt: now, lastProblem: undefined })
      log.info(`healthy: pid ${pid} answered GET ${url} in ${Math.round(check.ms)} ms`)
      return EXIT.HEALTHY
    }
    const failures = state.consecutiveFailures + 1
    if (failures < options.failures) {
      writeState(stateFile, { ...state, consecutiveFailures: failures, lastCheckAt: now, lastProblem: check.problem })
      log.error(`unhealthy (${failures} of ${options.failures} checks in a row): pid ${pid}, GET ${url}: ${check.problem}; ` +
        `restarting it at ${options.failures}`)
      return EXIT.COUNTED
    }
    log.error(`unhealthy ${failures} checks in a row: pid ${pid}, GET ${url}: ${check.problem}; restarting it`)
    try {
      await log.step('stop', `SIGTERM pid ${pid} (SIGKILL after ${seconds(options.stopTimeoutMs)})`, () => stopProcess(pid, options.stopTimeoutMs))
    } catch {
      writeState(stateFile, { ...state, consecutiveFailures: failures, lastCheckAt: now, lastProblem: check.problem })
      return EXIT.RESTART_FAILED
    }
  } else {
    const named = readPid(pidFile)
    log.error(named === undefined
      ? `no server: ${pidFile} is missing; starting it`
      : `no server: ${pidFile} names pid ${named}, which is not a running doorsense process; starting it`)
  }

  const restarted = await restart(options, config, url, pidFile, log)
  writeState(stateFile, {
    consecutiveFailures: restarted.ok ? 0 : state.consecutiveFailures,
    lastCheckAt: now,
    lastProblem: restarted.ok ? undefined : restarted.problem,
    lastRestartAt: now,
    lastRestartPid: restarted.pid
  })
  if (!restarted.ok) {
    log.error(`restart failed: ${restarted.problem}`)
    return EXIT.RESTART_FAILED
  }
  log.info(`restarted: pid ${restarted.pid} is healthy`)
  return EXIT.HEALTHY
}

/** Starts the server (itself, or through --restart-cmd) and waits until it is healthy. */
async function restart (
  options: WatchdogOptions,
  config: Config,
  url: string,
  pidFile: string,
  log: OpsLog
): Promise<{ ok: boolean, pid?: number, problem?: string }> {
  if (options.restartCmd !== undefined) {
    const command = options.restartCmd
    try {
      await log.step('restart', `$ ${command}`, () => runCommand(command, { cwd: PROJECT_ROOT }))
    } catch (err) {
      return { ok: false, problem: errorText(err) }
    }
    const deadline = performance.now() + options.startTimeoutMs
    while (performance.now() < deadline) {
      const pid = liveServerPid(pidFile)
      if (pid !== undefined && (await checkHealth(url, 2000)).ok) return { ok: true, pid }
      await sleep(200)
    }
    return { ok: false, problem: `no healthy server within ${seconds(options.startTimeoutMs)} after ${command}` }
  }
  const server = await log.step('start', `$ node --import tsx ${SERVER_ENTRY} (detached, output >> DATA_DIR/logs/server-output.log)`,
    async () => startServerDetached({ projectRoot: PROJECT_ROOT, dataDir: config.DATA_DIR, env: process.env }))
  log.info(`start: pid ${server.pid}`)
  const wait = await log.step('health', `GET ${url} until it answers 200 (up to ${seconds(options.startTimeoutMs)})`, async () => {
    const result = await waitUntilHealthy({ url, pidFile, server, timeoutMs: options.startTimeoutMs })
    if (!result.healthy) throw new Error(result.problem)
  }).then(() => ({ ok: true, pid: server.pid }), (err: unknown) => ({ ok: false, pid: server.pid, problem: errorText(err) }))
  if (!wait.ok) {
    const output = describeOutput(server)
    if (output !== '') log.info(output)
    // a server that hangs instead of answering must not linger holding the port
    await stopProcess(server.pid, options.stopTimeoutMs).catch(() => {})
  }
  return wait
}

process.exitCode = await main(process.argv.slice(2))
