/**
 * Starts the doorsense server: the only place that listens. Run it as
 * `node --import tsx bin/serve.ts` (`npm start`). Exit codes: 0 stopped
 * cleanly, 1 bad configuration or start-up failure (or a second stop signal),
 * 2 another live server owns the pid file. A start-up failure of DATA_DIR (not
 * writable, a file where a folder belongs, no space) is one line on stderr
 * naming the path and the fix, and so is a HOST:PORT it cannot listen on (in
 * use, privileged, not this machine's), naming the setting; a disk too full
 * even for the pid file starts read-only instead (see docs/reliability.md,
 * "A full disk").
 *
 * No shebang line: with one, tsx 4.23 fails to parse this file (its
 * dynamic-import rewrite chokes on the shebang plus esbuild's keepNames helper).
 */
import closeWithGrace from 'close-with-grace'
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import type { App } from '../core/app.js'
import { ConfigError, ConfigSchema, loadConfig, type Config } from '../core/config.js'
import { acquirePidFile, PidFileBusyError, pidFilePath, releasePidFile, SERVER_ENTRY } from '../core/pid-file.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT. */
const GRACE_MS = 8_000
/** A second stop signal sooner than this after the first is a duplicate, not an order to hurry. */
const DUPLICATE_SIGNAL_MS = 1_000

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`doorsense: ${err.message}`)
    process.exit(1)
  }
  throw err
}

const pidFile = pidFilePath(config.DATA_DIR)
let stalePid: number | undefined
let pidFileClaimed = false
/** Whether the disk was too full for the pid file: the server then runs read-only, without one. */
let withoutPidFile = false
try {
  stalePid = await claimPidFile()
  pidFileClaimed = true
} catch (err) {
  if (err instanceof PidFileBusyError) {
    console.error(`doorsense: refusing to start: ${err.message}`)
    process.exit(2)
  }
  if (!isOutOfSpace(err)) await failStart(err)
  withoutPidFile = true
}

/**
 * Claims the pid file (a live doorsense server's blocks the start, any other
 * process's is replaced); on a full disk the reserve in DATA_DIR is given up for it.
 */
async function claimPidFile (): Promise<number | undefined> {
  try {
    return acquirePidFile(pidFile, process.pid, { entry: SERVER_ENTRY }).stalePid
  } catch (err) {
    if (!isOutOfSpace(err)) throw err
    const { releaseReserve } = await import('../core/storage.js')
    if (releaseReserve(config.DATA_DIR) === 0) throw err
    return acquirePidFile(pidFile, process.pid, { entry: SERVER_ENTRY }).stalePid
  }
}

function isOutOfSpace (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/** Exits 1 with one line on stderr: what stopped the start, where, and what to do about it. */
async function failStart (err: unknown): Promise<never> {
  if (pidFileClaimed) releasePidFile(pidFile)
  const { DATABASE_FILE } = await import('../core/storage.js')
  const described = describeListenError(err, config) ?? describeStartError(err, config.DATA_DIR, join(config.DATA_DIR, DATABASE_FILE))
  console.error(`doorsense: ${described ?? `failed to start: ${(err as Error).message}`}`)
  process.exit(1)
}

/**
 * A failure to listen on HOST:PORT as one line naming the setting and the
 * fix; undefined for any other failure (a listen EACCES is not DATA_DIR's).
 */
function describeListenError (err: unknown, { HOST: host, PORT: port }: Config): string | undefined {
  const { code, syscall } = err as NodeJS.ErrnoException
  if (syscall !== 'listen' && syscall !== 'bind') return undefined
  switch (code) {
    case 'EADDRINUSE':
      return `cannot start: port ${port} on ${host} is already in use (PORT=${port}); ` +
        `stop what listens there (ss -ltnp 'sport = :${port}' shows it) or set PORT to a free port`
    case 'EACCES':
    case 'EPERM':
      return `cannot start: user ${userName()} may not listen on port ${port} (PORT=${port}; ports below 1024 need privileges); ` +
        `set PORT to 1024 or above (the default is ${ConfigSchema.properties.PORT.default})`
    case 'EADDRNOTAVAIL':
      return `cannot start: ${host} is not an address of this machine (HOST=${host}); set HOST to one of its addresses, 127.0.0.1, or 0.0.0.0 for all`
    default:
      return undefined
  }
}

/**
 * A start-up failure of the files under DATA_DIR as one line naming the path
 * and the fix, like an environment error; undefined for any other failure.
 */
function describeStartError (err: unknown, dataDir: string, databaseFile: string): string | undefined {
  const { code, path = dataDir, syscall } = err as NodeJS.ErrnoException
  switch (code) {
    case 'ENOENT': {
      // a recursive mkdir says only ENOENT when a folder above cannot take the new one: ask that folder why
      if (syscall !== 'mkdir') return undefined
      const above = existingFolderAbove(path)
      try {
        accessSync(above, constants.W_OK)
      } catch (denied) {
        return describeStartError(Object.assign(denied as Error, { path: above }), dataDir, databaseFile)
      }
      return undefined
    }
    case 'EACCES':
    case 'EPERM':
      return `cannot start: user ${userName()} may not write ${path} (DATA_DIR ${dataDir}); ` +
        `make DATA_DIR that user's (chown -R ${userName()} ${dataDir}) or set DATA_DIR to a folder it may write`
    case 'EROFS':
      return `cannot start: ${path} is on a read-only file system (DATA_DIR ${dataDir}); remount it read-write or set DATA_DIR to a folder on a writable disk`
    case 'EEXIST':
    case 'ENOTDIR':
      return `cannot start: ${fileInTheWay(path)} is a file where a folder is needed (for ${path}); move the file away or set DATA_DIR to a folder`
    case 'EISDIR':
      return `cannot start: ${path} is a folder where doorsense keeps a file; move the folder away`
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SQLITE_FULL':
      return `cannot start: no space left on the disk holding DATA_DIR ${dataDir}` +
        (code === 'SQLITE_FULL' ? ` for the database ${databaseFile}` : ` (writing ${path})`) +
        `; free some space on it (df -h ${dataDir}) and start again`
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_READONLY':
      return `cannot start: the database ${databaseFile} cannot be opened for writing by user ${userName()}; ` +
        `make it (and DATA_DIR ${dataDir}) that user's, or set DATA_DIR to another folder`
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return `cannot start: ${databaseFile} is not a doorsense database or is damaged; restore it from a backup, or move it away to start with an empty one`
    default:
      return undefined
  }
}

/** The path itself or the nearest folder above it that is in fact a file. */
function fileInTheWay (path: string): string {
  for (let at = path; at !== dirname(at); at = dirname(at)) {
    try {
      if (!statSync(at).isDirectory()) return at
    } catch {
      // not there: the file is further up
    }
  }
  return path
}

/** The nearest folder at or above `path` that exists. */
function existingFolderAbove (path: string): string {
  let at = path
  while (at !== dirname(at) && !existsSync(at)) at = dirname(at)
  return at
}

function userName (): string {
  try {
    return userInfo().username
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`
  }
}

// Stop signals are caught from here on: one that arrives during the start-up
// stops the server as soon as it listens, and the pid file is not left behind.
let stopSignal: NodeJS.Signals | undefined
let stoppingSince: number | undefined
let listening = false

/**
 * Ctrl-C under `npm start` delivers SIGINT twice (from the terminal and again
 * from npm, which forwards it), so a repeat within DUPLICATE_SIGNAL_MS is the
 * same request; a later one means "stop now".
 */
function onStopSignal (signal: NodeJS.Signals): void {
  if (stoppingSince === undefined) {
    stoppingSince = Date.now()
    stopSignal = signal
    if (listening) beginStop()
  } else if (Date.now() - stoppingSince > DUPLICATE_SIGNAL_MS) {
    releasePidFile(pidFile)
    console.error(`doorsense: second ${signal} while stopping; exiting now`)
    process.exit(1)
  }
}
process.on('SIGINT', onStopSignal)
process.on('SIGTERM', onStopSignal)

let app: App
try {
  // loaded only now, so a bad variable or a refused start answers at once
  const { buildApp } = await import('../core/app.js')
  app = await buildApp(config)
  if (stalePid !== undefined) app.log.warn({ pidFile, stalePid }, 'replaced a stale pid file')
  if (app.storage.openedOnFullDisk || withoutPidFile) {
    app.log.warn({ dataDir: config.DATA_DIR, pidFile: withoutPidFile ? null : pidFile },
      `the disk holding DATA_DIR ${config.DATA_DIR} is full: started read-only — reads answer, writes answer 507 (storage full) until there is room` +
      (withoutPidFile
        ? `; no pid file could be written (${pidFile}), so the watchdog, redeploy and the CLI do not see this server (pid ${process.pid})`
        : '') +
      '; free some space on that disk and restart doorsense')
  }
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  await failStart(err)
}

const closer = closeWithGrace({
  delay: GRACE_MS,
  // SIGINT and SIGTERM are handled above, so a duplicated signal does not cut the grace short
  skip: ['SIGINT', 'SIGTERM'],
  onTimeout: () => {
    releasePidFile(pidFile)
    console.error(`doorsense: in-flight work did not finish within ${GRACE_MS} ms; exiting`)
  }
}, async ({ err }) => {
  if (err) app.log.error({ err }, 'stopping after an uncaught error')
  try {
    await app.close()
  } finally {
    releasePidFile(pidFile)
  }
})

listening = true
if (stoppingSince !== undefined) beginStop()

function beginStop (): void {
  app.log.info({ signal: stopSignal }, 'stopping: finishing in-flight requests')
  closer.close() // exits 0 once closed, 1 on timeout
}
