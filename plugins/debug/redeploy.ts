import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { ConflictError } from '../../core/errors.js'
import { LOG_DIR } from '../../core/logger.js'
import { PidFileBusyError } from '../../core/pid-file.js'
import { redeployHolder, takeRedeployLock } from '../../core/redeploy-lock.js'

/** Starts bin/redeploy detached for POST /debug/post/redeploy. */
export interface RedeployLauncher {
  /** Whether a redeploy (started by anyone: route, cron, admin) holds the redeploy lock now. */
  isRunning (): boolean
  /**
   * Starts bin/redeploy detached (it outlives this server, which it will stop).
   * @returns its pid, or configured=false when redeploy is not wired here
   * @throws ConflictError when another redeploy took the lock in the meantime
   */
  start (): { configured: boolean, pid?: number }
}

export interface RedeployLauncherOptions {
  projectRoot: string
  dataDir: string
}

/** The redeploy script, relative to the project root. */
const REDEPLOY_ENTRY = 'bin/redeploy.ts'

/** File (in DATA_DIR/logs) that receives the output of redeploys started by the route. */
export const REDEPLOY_LOG = 'redeploy.log'

/**
 * The launcher behind POST /debug/post/redeploy. Redeploy pulls with git, so
 * it is wired only where the project is a git checkout (not in the Docker
 * image, which is replaced, not pulled into). The child runs in its own
 * session with its output going straight to DATA_DIR/logs/redeploy.log: it
 * stops this server, so nothing may tie it to this process.
 */
export function createRedeployLauncher (options: RedeployLauncherOptions): RedeployLauncher {
  const script = join(options.projectRoot, REDEPLOY_ENTRY)
  const configured = existsSync(join(options.projectRoot, '.git')) && existsSync(script)
  return {
    isRunning: () => redeployHolder(options.dataDir) !== undefined,
    start () {
      if (!configured) return { configured: false }
      const logFile = join(options.dataDir, LOG_DIR, REDEPLOY_LOG)
      mkdirSync(join(options.dataDir, LOG_DIR), { recursive: true })
      const fd = openSync(logFile, 'a')
      let pid: number | undefined
      try {
        const child = spawn(process.execPath, ['--import', 'tsx', REDEPLOY_ENTRY], {
          cwd: options.projectRoot,
          // the same settings as this server; DATA_DIR absolute, so the child finds this pid file and lock
          env: { ...process.env, DATA_DIR: options.dataDir },
          detached: true,
          stdio: ['ignore', fd, fd]
        })
        // a failed spawn leaves pid undefined (reported below); the event must still be handled
        child.on('error', () => {})
        child.unref()
        pid = child.pid
      } finally {
        closeSync(fd)
      }
      if (pid === undefined) throw new Error(`could not start ${process.execPath} --import tsx ${REDEPLOY_ENTRY}`)
      try {
        // taken now for the child, so a second request is refused before the child has even loaded
        takeRedeployLock(options.dataDir, pid)
      } catch (err) {
        if (!(err instanceof PidFileBusyError)) throw err
        // the child would find the lock taken and exit 2; stop it before it logs a confusing failure
        try {
          process.kill(pid, 'SIGTERM')
        } catch {}
        throw new ConflictError(`a redeploy (pid ${err.pid}) is already running: wait for it to finish`)
      }
      return { configured: true, pid }
    }
  }
}
