import { join } from 'node:path'
import { acquirePidFile, isAlive, readPid, releasePidFile } from './pid-file.js'

/** The redeploy lock's name inside DATA_DIR: a pid file naming the redeploy that holds it. */
export const REDEPLOY_LOCK = 'redeploy.lock'

/** Path of the redeploy lock for a data directory. */
export function redeployLockPath (dataDir: string): string {
  return join(dataDir, REDEPLOY_LOCK)
}

/**
 * The pid of the live redeploy holding the lock, or undefined when the lock is
 * free or names a process that is gone (a redeploy killed with -9 leaves one).
 */
export function redeployHolder (dataDir: string): number | undefined {
  const pid = readPid(redeployLockPath(dataDir))
  return pid !== undefined && isAlive(pid) ? pid : undefined
}

/**
 * Takes the lock for `pid` (a stale lock is replaced); throws
 * PidFileBusyError naming the live holder. Taking it again for the pid that
 * holds it succeeds: the route takes it for the redeploy it has just spawned,
 * and that redeploy then takes it for itself.
 */
export function takeRedeployLock (dataDir: string, pid: number = process.pid): void {
  acquirePidFile(redeployLockPath(dataDir), pid)
}

/** Frees the lock if `pid` holds it. */
export function releaseRedeployLock (dataDir: string, pid: number = process.pid): void {
  releasePidFile(redeployLockPath(dataDir), pid)
}
