#!/usr/bin/env -S node --import tsx
/**
 * bin/redeploy (`npm run redeploy`): brings this checkout to the newest
 * commit of its branch and swaps the running server for it, rolling back when
 * the new version does not come up. Admins, CI and POST /debug/post/redeploy
 * call it; `-- --dry-run` prints every step and changes nothing.
 *
 * Steps: take the lock (DATA_DIR/redeploy.lock) · check the checkout is clean ·
 * record the current commit · `git pull --ff-only REMOTE BRANCH` · install
 * (`npm ci`) · build (`tsc --noEmit`: tsx runs the TypeScript as it is, so the
 * typecheck is the build that can fail) · regenerate the docs · stop the
 * server named by the pid file (SIGTERM, SIGKILL after the stop timeout) ·
 * start the new one detached (`node --import tsx bin/serve.ts`, the old
 * server's environment, output appended to DATA_DIR/logs/server-output.log) ·
 * wait for GET /debug/get/exists. Everything up to the docs runs while the
 * old server still serves, so clients only wait for the stop and the start.
 *
 * If a step before the stop fails, the checkout is put back on the recorded
 * commit (and reinstalled if it moved) and the running server is not touched.
 * If the new server is not healthy in time, it is stopped, the recorded commit
 * is checked out again, reinstalled, and the old version restarted.
 *
 * Exit codes: 0 redeployed and healthy (or the dry run was printed) ·
 * 1 bad usage or configuration, or an unexpected error (see the log) · 2 another redeploy holds the lock ·
 * 3 a step before the stop failed (checkout restored, server untouched) ·
 * 4 the new version was not healthy: rolled back, the old version serves ·
 * 5 the rollback failed too: nothing healthy is serving, a human is needed.
 */
import { writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig, type Config } from '../core/config.js'
import { PROJECT_ROOT } from '../core/project.js'
import { PidFileBusyError, pidFilePath } from '../core/pid-file.js'
import { startOps, type OpsFlags } from './lib/ops-cli.js'
import { createOpsLog, errorText, seconds, type OpsLog } from './lib/ops-log.js'
import { redeployLockPath, releaseRedeployLock, takeRedeployLock } from '../core/redeploy-lock.js'
import { readCommand, runCommand } from './lib/run-command.js'
import {
  healthUrl, liveServerPid, describeOutput, processEnvironment, SERVER_ENTRY, startServerDetached,
  stopProcess, waitUntilHealthy, type StartedServer
} from './lib/server-process.js'

/** The exit codes, as documented above. */
const REDEPLOY_EXIT = {
  OK: 0,
  USAGE: 1,
  LOCKED: 2,
  PREPARE_FAILED: 3,
  ROLLED_BACK: 4,
  DOWN: 5
} as const

/** A command value that skips its step (`--build-cmd none`). */
const SKIP = 'none'

const USAGE = `usage: npm run redeploy -- [options]   (node --import tsx bin/redeploy.ts [options])
  --dry-run              print every step, change nothing            env REDEPLOY_DRY_RUN=1
  --remote NAME          git remote to pull from (origin)            env REDEPLOY_REMOTE
  --branch NAME          branch to pull (the checked-out branch)     env REDEPLOY_BRANCH
  --install-cmd CMD      install step ("npm ci --no-audit --no-fund") env REDEPLOY_INSTALL_CMD
  --build-cmd CMD        build step ("tsc --noEmit"; "none" skips)   env REDEPLOY_BUILD_CMD
  --docs-cmd CMD         docs step ("node --import tsx bin/generate-docs.ts"; "none" skips)
                                                                     env REDEPLOY_DOCS_CMD
  --health-timeout S     seconds the new server gets to answer (60)  env REDEPLOY_HEALTH_TIMEOUT_S
  --stop-timeout S       seconds between SIGTERM and SIGKILL (15)    env REDEPLOY_STOP_TIMEOUT_S
Commands are split into words like a shell would (no pipes or variables); the
project's node_modules/.bin comes first on their PATH. The server settings
(PORT, HOST, DATA_DIR, …) come from the running server's environment, else
from this one.
exit: 0 ok · 1 usage/config/unexpected · 2 locked · 3 prepare failed (server untouched) ·
      4 rolled back (old version serving) · 5 rollback failed (nothing serving)`

/** What one redeploy does, from argv and env. */
interface RedeployOptions {
  dryRun: boolean
  remote: string
  branch?: string
  installCmd: string
  buildCmd: string
  docsCmd: string
  healthTimeoutMs: number
  stopTimeoutMs: number
}

/** The flags, each with its REDEPLOY_* variable as the fallback. */
function redeployOptions (flags: OpsFlags): RedeployOptions {
  return {
    dryRun: flags.yes('dry-run', 'REDEPLOY_DRY_RUN'),
    remote: flags.text('remote', 'REDEPLOY_REMOTE') ?? 'origin',
    branch: flags.text('branch', 'REDEPLOY_BRANCH'),
    installCmd: flags.text('install-cmd', 'REDEPLOY_INSTALL_CMD') ?? 'npm ci --no-audit --no-fund',
    buildCmd: flags.text('build-cmd', 'REDEPLOY_BUILD_CMD') ?? 'tsc --noEmit',
    docsCmd: flags.text('docs-cmd', 'REDEPLOY_DOCS_CMD') ?? 'node --import tsx bin/generate-docs.ts',
    healthTimeoutMs: flags.milliseconds('health-timeout', 'REDEPLOY_HEALTH_TIMEOUT_S', 60),
    stopTimeoutMs: flags.milliseconds('stop-timeout', 'REDEPLOY_STOP_TIMEOUT_S', 15)
  }
}

/** Runs one redeploy; resolves to the exit code. */
async function main (argv: string[]): Promise<number> {
  const started = startOps('redeploy', argv, USAGE, {
    'dry-run': 'boolean',
    remote: 'string',
    branch: 'string',
    'install-cmd': 'string',
    'build-cmd': 'string',
    'docs-cmd': 'string',
    'health-timeout': 'string',
    'stop-timeout': 'string'
  }, redeployOptions)
  if (typeof started === 'number') return started
  const { options, config: ownConfig } = started
  const log = createOpsLog('redeploy')
  const dataDir = ownConfig.DATA_DIR
  const lock = redeployLockPath(dataDir)
  try {
    await log.step('lock', `take ${lock}`, async () => takeRedeployLock(dataDir))
  } catch (err) {
    if (!(err instanceof PidFileBusyError)) throw err
    log.error(`another redeploy (pid ${err.pid}) holds ${lock}; refusing to run two at once: try again when it has finished`)
    return REDEPLOY_EXIT.LOCKED
  }
  try {
    return await new Redeploy(options, dataDir, log).run()
  } catch (err) {
    log.error(`stopped by an unexpected error: ${errorText(err)}`)
    return REDEPLOY_EXIT.USAGE
  } finally {
    releaseRedeployLock(dataDir)
  }
}

/** One run, holding the lock; `run()` resolves to the exit code. */
class Redeploy {
  private readonly started = performance.now()
  private readonly startedAt = new Date()
  private readonly root = PROJECT_ROOT
  private readonly pidFile: string
  private fromCommit = ''
  private toCommit = ''
  private installAttempted = false
  private installFailed = false
  private docsRan = false

  constructor (private readonly options: RedeployOptions, private readonly dataDir: string, private readonly log: OpsLog) {
    this.pidFile = pidFilePath(dataDir)
  }

  async run (): Promise<number> {
    const { options, log } = this
    if (options.dryRun) log.info('dry run: the read-only checks run, every other step is only printed; nothing is changed')

    const dirty = await log.step('check', 'git status --porcelain --untracked-files=no', () => this.git(['status', '--porcelain', '--untracked-files=no']))
    if (dirty !== '') {
      log.error(`the checkout ${this.root} has uncommitted changes to tracked files; commit or discard them first:\n${dirty}`)
      return REDEPLOY_EXIT.PREPARE_FAILED
    }
    this.fromCommit = await log.step('record', 'git rev-parse HEAD', () => this.git(['rev-parse', 'HEAD']))
    let branch = options.branch
    if (branch === undefined) {
      try {
        branch = await this.git(['symbolic-ref', '--short', 'HEAD'])
      } catch {
        log.error('HEAD is detached: pass --branch (or REDEPLOY_BRANCH) to say which branch to pull')
        return REDEPLOY_EXIT.USAGE
      }
    }
    log.info(`recorded commit ${this.fromCommit} on branch ${branch}; a failed redeploy returns to it`)

    const oldPid = liveServerPid(this.pidFile)
    const inherited = oldPid === undefined ? undefined : processEnvironment(oldPid)
    // the new server must get the settings the running one has, whoever runs this script
    const serverEnv = { ...(inherited ?? process.env), DATA_DIR: this.dataDir }
    let serverConfig: Config
    try {
      serverConfig = loadConfig(serverEnv)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      log.error(`the server's environment is invalid: ${err.message}`)
      return REDEPLOY_EXIT.USAGE
    }
    const url = healthUrl(serverConfig)
    const environment = inherited === undefined ? 'this process\'s environment (the server\'s is unreadable)' : 'its environment'
    log.info(oldPid === undefined
      ? `no server is running (${this.pidFile} names no live doorsense process); the new one gets this environment`
      : `server pid ${oldPid} is running; the new one gets ${environment}`)

    const pull = `git pull --ff-only ${options.remote} ${branch}`
    const prepare: Array<{ name: 'pull' | 'install' | 'build' | 'docs', command: string }> = [
      { name: 'pull', command: pull },
      { name: 'install', command: options.installCmd },
      { name: 'build', command: options.buildCmd },
      { name: 'docs', command: options.docsCmd }
    ]
    if (options.dryRun) return this.printPlan(prepare, oldPid, url)

    for (const { name, command } of prepare) {
      if (command === SKIP) {
        log.info(`${name}: skipped (${SKIP})`)
        continue
      }
      if (name === 'install') this.installAttempted = true
      try {
        await log.step(name, `$ ${command}`, () => runCommand(command, { cwd: this.root }))
      } catch {
        if (name === 'install') this.installFailed = true
        log.error(`${name} failed; the running server is left as it is`)
        const restored = await this.restoreCheckout()
        return this.finish(restored ? REDEPLOY_EXIT.PREPARE_FAILED : REDEPLOY_EXIT.DOWN, `${name} failed`)
      }
      if (name === 'pull') {
        this.toCommit = await this.git(['rev-parse', 'HEAD'])
        log.info(this.toCommit === this.fromCommit
          ? `already at ${short(this.fromCommit)}: redeploying it as it is`
          : `moved ${short(this.fromCommit)} -> ${short(this.toCommit)}`)
      }
      if (name === 'docs') this.docsRan = true
    }

    const unavailableSince = performance.now()
    if (oldPid !== undefined) {
      try {
        await log.step('stop', `SIGTERM pid ${oldPid} (SIGKILL after ${seconds(options.stopTimeoutMs)})`, () => stopProcess(oldPid, options.stopTimeoutMs))
          .then((how) => log.info(`server pid ${oldPid} ${how}`))
      } catch {
        log.error(`could not stop server pid ${oldPid}`)
        const restored = await this.restoreCheckout()
        return this.finish(restored ? REDEPLOY_EXIT.PREPARE_FAILED : REDEPLOY_EXIT.DOWN, 'stop failed')
      }
    } else {
      log.info('stop: nothing to stop')
    }

    const fresh = await this.startAndWait(serverEnv, url, 'start', 'health')
    if (fresh.healthy) {
      log.info(`redeployed ${short(this.fromCommit)} -> ${short(this.toCommit)} in ${seconds(performance.now() - this.started)}; ` +
        `server pid ${fresh.server.pid} healthy; clients waited ${seconds(performance.now() - unavailableSince)} (stop to healthy)`)
      return this.finish(REDEPLOY_EXIT.OK, 'redeployed', fresh.server.pid)
    }

    log.error(`the new version did not come up: ${fresh.problem}; rolling back to ${short(this.fromCommit)}`)
    try {
      await log.step('rollback stop', `SIGTERM pid ${fresh.server.pid}, the new server`, () => stopProcess(fresh.server.pid, options.stopTimeoutMs))
    } catch {
      return this.finish(REDEPLOY_EXIT.DOWN, 'the failed new server could not be stopped')
    }
    if (!await this.restoreCheckout()) return this.finish(REDEPLOY_EXIT.DOWN, 'rollback of the checkout failed')
    // the old version is known to start: it gets at least a minute, even when the new one got less
    const old = await this.startAndWait(serverEnv, url, 'rollback start', 'rollback health', Math.max(options.healthTimeoutMs, 60_000))
    if (!old.healthy) {
      log.error(`the old version did not come up either: ${old.problem}; nothing healthy is serving`)
      return this.finish(REDEPLOY_EXIT.DOWN, 'rollback failed', old.server.pid)
    }
    if (this.docsRan) {
      // the docs on disk describe the version that failed; not worth failing the rollback over
      await log.step('rollback docs', `$ ${options.docsCmd}`, () => runCommand(options.docsCmd, { cwd: this.root }))
        .catch(() => log.error('could not regenerate the docs of the old version; run `npm run docs`'))
    }
    log.info(`rolled back to ${short(this.fromCommit)}; server pid ${old.server.pid} healthy`)
    return this.finish(REDEPLOY_EXIT.ROLLED_BACK, 'rolled back', old.server.pid)
  }

  private printPlan (prepare: Array<{ name: string, command: string }>, oldPid: number | undefined, url: string): number {
    const { log, options } = this
    for (const { name, command } of prepare) log.info(`${name}: would run $ ${command === SKIP ? `(skipped: ${SKIP})` : command}`)
    log.info(oldPid === undefined
      ? 'stop: would find no server to stop'
      : `stop: would send SIGTERM to pid ${oldPid}, SIGKILL after ${seconds(options.stopTimeoutMs)}`)
    log.info(`start: would run $ node --import tsx ${SERVER_ENTRY} (detached, cwd ${this.root}, output >> ${join(this.dataDir, 'logs', 'server-output.log')})`)
    log.info(`health: would wait up to ${seconds(options.healthTimeoutMs)} for GET ${url} to answer 200`)
    log.info(`on failure: would run $ git reset --hard ${this.fromCommit}, then $ ${options.installCmd}, and restart the old version`)
    log.info(`dry run done in ${seconds(performance.now() - this.started)}; nothing was changed`)
    return REDEPLOY_EXIT.OK
  }

  /** Starts a server and waits for it; a failure's output is shown in the log. */
  private async startAndWait (
    env: Record<string, string | undefined>,
    url: string,
    startStep: string,
    healthStep: string,
    timeoutMs = this.options.healthTimeoutMs
  ): Promise<{ healthy: true, server: StartedServer } | { healthy: false, server: StartedServer, problem: string }> {
    const { log } = this
    const server = await log.step(startStep, `$ node --import tsx ${SERVER_ENTRY} (detached, output >> DATA_DIR/logs/server-output.log)`,
      async () => startServerDetached({ projectRoot: this.root, dataDir: this.dataDir, env }))
    log.info(`${startStep}: pid ${server.pid}`)
    const wait = await log.step(healthStep, `GET ${url} until it answers 200 (up to ${seconds(timeoutMs)})`, async () => {
      const result = await waitUntilHealthy({ url, pidFile: this.pidFile, server, timeoutMs })
      if (!result.healthy) throw new Error(result.problem)
      return result
    }).catch((err: unknown) => ({ healthy: false as const, problem: errorText(err) }))
    if (wait.healthy) return { healthy: true, server }
    const output = describeOutput(server)
    if (output !== '') log.info(output)
    return { healthy: false, server, problem: wait.problem }
  }

  /** Puts the checkout back on the recorded commit, reinstalling when needed; false when that failed. */
  private async restoreCheckout (): Promise<boolean> {
    const { log, options } = this
    try {
      const head = await this.git(['rev-parse', 'HEAD'])
      const moved = head !== this.fromCommit
      if (moved) {
        const reset = `git reset --hard ${this.fromCommit}`
        await log.step('rollback checkout', `$ ${reset}`, () => runCommand(reset, { cwd: this.root }))
      }
      if (this.installAttempted && (moved || this.installFailed) && options.installCmd !== SKIP) {
        await log.step('rollback install', `$ ${options.installCmd}`, () => runCommand(options.installCmd, { cwd: this.root }))
      }
      return true
    } catch {
      log.error(`could not restore the checkout to ${this.fromCommit}; fix it by hand: git reset --hard ${this.fromCommit} && ${options.installCmd}`)
      return false
    }
  }

  /** Records the outcome in DATA_DIR/redeploy-last.json (for admins) and returns the exit code. */
  private finish (code: number, outcome: string, serverPid?: number): number {
    const record = {
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: Number(((performance.now() - this.started) / 1000).toFixed(2)),
      fromCommit: this.fromCommit,
      toCommit: this.toCommit || undefined,
      exitCode: code,
      outcome,
      serverPid
    }
    const file = join(this.dataDir, 'redeploy-last.json')
    writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`)
    renameSync(`${file}.tmp`, file)
    if (code !== REDEPLOY_EXIT.OK) this.log.error(`${outcome} (exit ${code}) after ${seconds(performance.now() - this.started)}`)
    return code
  }

  private async git (args: string[]): Promise<string> {
    return readCommand('git', args, this.root)
  }
}

function short (commit: string): string {
  return commit.slice(0, 12)
}

process.exitCode = await main(process.argv.slice(2))
