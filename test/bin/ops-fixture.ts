import type { TestContext } from 'node:test'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { PROJECT_ROOT } from '../../core/app.js'
import { readPid } from '../../core/pid-file.js'
import { isDoorsenseServer, startServerDetached } from '../../bin/lib/server-process.js'
import { ADMIN_TOKEN, tempDir } from '../helper.js'

/*
 * Helpers for the operations tests (redeploy, watchdog, the redeploy route):
 * real processes on 127.0.0.1, temp folders, and a tracker that stops every
 * server a test caused, by pid, even when the test fails.
 */

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** This process's environment without the test runner's own variables, for the processes a test starts. */
export function baseEnv (): Record<string, string | undefined> {
  const { NODE_TEST_CONTEXT: _runner, ...env } = process.env
  return env
}

/** The environment the server, redeploy and watchdog run with in these tests. */
export function serverEnv (dataDir: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    LOG_TO_FILE: 'false',
    ADMIN_TOKEN,
    TF_BACKEND: 'cpu',
    ...extra
  }
}

/**
 * Remembers the pids of the servers a test caused (read from pid files and
 * from the scripts' "pid N" lines) and kills those still running after the
 * test, whatever its outcome.
 */
export class ServerTracker {
  readonly pids = new Set<number>()

  constructor (t: TestContext, private readonly pidFile: string) {
    t.after(async () => this.stopAll())
  }

  /** Records the pid the pid file names now, and returns it. */
  current (): number | undefined {
    const pid = readPid(this.pidFile)
    if (pid !== undefined) this.pids.add(pid)
    return pid
  }

  /** Records every `pid N` a script printed. */
  noteOutput (output: string): void {
    for (const match of output.matchAll(/\bpid (\d+)\b/g)) this.pids.add(Number(match[1]))
  }

  async stopAll (): Promise<void> {
    this.current()
    for (const pid of this.pids) {
      if (!isDoorsenseServer(pid)) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    for (const pid of this.pids) {
      for (let i = 0; i < 100 && isDoorsenseServer(pid); i++) await sleep(20)
    }
  }
}

/** Starts the server of `projectRoot` detached, as the ops scripts do, and waits until it answers. */
export async function startServer (projectRoot: string, env: Record<string, string>, tracker: ServerTracker): Promise<number> {
  const server = startServerDetached({ projectRoot, dataDir: env.DATA_DIR as string, env: { ...baseEnv(), ...env } })
  tracker.pids.add(server.pid)
  await waitFor(`server pid ${server.pid} healthy`, async () => (await get(env, '/debug/get/exists'))?.status === 200 && readPid(join(env.DATA_DIR as string, 'doorsense.pid')) === server.pid, 60_000, () => server.exit() !== undefined)
  return server.pid
}

/** GET a path of the server configured by `env`; undefined when nothing answers. */
export async function get (env: Record<string, string>, path: string): Promise<{ status: number, body: string } | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${env.PORT}${path}`, { signal: AbortSignal.timeout(2000) })
    return { status: response.status, body: await response.text() }
  } catch {
    return undefined
  }
}

/** Polls `check` until it holds; throws after `timeoutMs`, or at once when `gaveUp` says it never will. */
export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (gaveUp()) throw new Error(`gave up waiting for ${what}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** Result of running one ops script. */
export interface ScriptRun {
  exitCode: number
  output: string
  ms: number
}

/** Runs `node --import tsx <script> ...args` in `cwd` and collects its output. */
export async function runScript (cwd: string, script: string, args: string[], env: Record<string, string>, timeoutMs = 240_000): Promise<ScriptRun> {
  const started = performance.now()
  const result = await execa(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd,
    env: { ...baseEnv(), ...env },
    extendEnv: false,
    all: true,
    reject: false,
    timeout: timeoutMs,
    stdin: 'ignore'
  })
  return { exitCode: result.exitCode ?? -1, output: result.all ?? '', ms: performance.now() - started }
}

/** A deploy checkout of a snapshot of this project, with the bare remote it pulls from. */
export interface DeployRepo {
  /** the deploy checkout (the redeploy runs here, as it does on a server) */
  checkout: string
  /** a developer's clone: commits made here are pushed to the remote */
  work: string
  /** git in `dir`, answering stdout */
  git: (dir: string, ...args: string[]) => Promise<string>
  /** commits the edits in the work clone and pushes them; returns the commit */
  commitAndPush: (message: string, edit: (work: string) => void) => Promise<string>
}

/**
 * A temporary bare remote holding a snapshot of this project (its tracked and
 * untracked-but-not-ignored files), a deploy checkout cloned from it and a
 * work clone to push new commits from. The checkout's node_modules is a
 * symlink to this project's: a real `npm ci` compiles better-sqlite3 for
 * minutes, so these tests use `npm ls` as the install step, which fails when
 * the installed tree does not satisfy package.json and the lock file.
 */
export async function deployRepo (t: TestContext): Promise<DeployRepo> {
  const root = tempDir(t, 'doorsense-redeploy-')
  const git = async (dir: string, ...args: string[]): Promise<string> => (await execa('git', args, { cwd: dir })).stdout.trim()
  const seed = join(root, 'seed')
  const files = (await execa('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: PROJECT_ROOT })).stdout.split('\0').filter((file) => file !== '')
  for (const file of files) {
    const from = join(PROJECT_ROOT, file)
    try {
      mkdirSync(dirname(join(seed, file)), { recursive: true })
      cpSync(from, join(seed, file))
    } catch (err) {
      // a tracked file deleted in the working tree is simply not part of the snapshot
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  await git(seed, 'init', '-q', '-b', 'main')
  await git(seed, 'add', '-A')
  await git(seed, '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-q', '-m', 'v1')
  const remote = join(root, 'remote.git')
  await git(root, 'clone', '-q', '--bare', seed, remote)
  const checkout = join(root, 'checkout')
  const work = join(root, 'work')
  await git(root, 'clone', '-q', remote, checkout)
  await git(root, 'clone', '-q', remote, work)
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(checkout, 'node_modules'))
  return {
    checkout,
    work,
    git,
    async commitAndPush (message, edit) {
      edit(work)
      await git(work, 'add', '-A')
      await git(work, '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-q', '-m', message)
      await git(work, 'push', '-q', 'origin', 'main')
      return git(work, 'rev-parse', 'HEAD')
    }
  }
}

/** Rewrites the version in a checkout's package.json (what GET /debug/get/version/server answers). */
export function setVersion (dir: string, version: string): void {
  const file = join(dir, 'package.json')
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version: string }
  pkg.version = version
  writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`)
}

/** Version v1 of the deploy checkout answers on /debug/get/version/server. */
export const V1_VERSION = '0.1.0-redeploy-test.1'

/** A deploy checkout at v1 with its server running, and helpers to redeploy it. */
export interface DeployedServer {
  repo: DeployRepo
  dataDir: string
  env: Record<string, string>
  tracker: ServerTracker
  v1: string
  /** pid of the v1 server */
  pid: number
  /** runs bin/redeploy of the checkout with fast steps (see below), `extra` env and `args` */
  redeploy: (extra?: Record<string, string>, args?: string[]) => Promise<ScriptRun>
  servedVersion: () => Promise<string | undefined>
  head: () => Promise<string>
}

/**
 * The redeploy steps the tests use: the install step verifies the symlinked
 * node_modules with `npm ls` (see deployRepo); the build only finds the
 * project's own tsc; no docs. The real typecheck and typedoc take a minute:
 * `npm test` and the docs test run those.
 */
export const FAST_STEPS = {
  REDEPLOY_INSTALL_CMD: 'npm ls --depth=0',
  REDEPLOY_BUILD_CMD: 'tsc --version',
  REDEPLOY_DOCS_CMD: 'none',
  REDEPLOY_STOP_TIMEOUT_S: '10'
}

/** deployRepo, with v1 committed, checked out and its server started on a free port. */
export async function deployedServer (t: TestContext): Promise<DeployedServer> {
  const repo = await deployRepo(t)
  const dataDir = tempDir(t, 'doorsense-redeploy-data-')
  const env = serverEnv(dataDir, await freePort())
  const tracker = new ServerTracker(t, join(dataDir, 'doorsense.pid'))
  const head = async (): Promise<string> => repo.git(repo.checkout, 'rev-parse', 'HEAD')
  await repo.commitAndPush('v1 version', (work) => setVersion(work, V1_VERSION))
  await repo.git(repo.checkout, 'pull', '-q', '--ff-only')
  const v1 = await head()
  const pid = await startServer(repo.checkout, env, tracker)
  return {
    repo,
    dataDir,
    env,
    tracker,
    v1,
    pid,
    head,
    servedVersion: async () => (await get(env, '/debug/get/version/server'))?.body,
    async redeploy (extra = {}, args = []) {
      const run = await runScript(repo.checkout, 'bin/redeploy.ts', args, { ...env, ...FAST_STEPS, ...extra })
      tracker.noteOutput(run.output)
      return run
    }
  }
}

/** A script run's exit code and output, for assertion messages. */
export function explain (run: ScriptRun): string {
  return `exit ${run.exitCode} after ${Math.round(run.ms)} ms; output:\n${run.output}`
}
