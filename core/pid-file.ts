import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The pid file's name inside DATA_DIR. */
export const PID_FILE = 'doorsense.pid'

/** Path of the pid file for a data directory. */
export function pidFilePath (dataDir: string): string {
  return join(dataDir, PID_FILE)
}

/** The pid recorded in `file`, or undefined when there is none or it is garbage. */
export function readPid (file: string): number | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** Whether a process with this pid exists (EPERM means it exists but is not ours). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Thrown when a live process already owns the pid file. */
export class PidFileBusyError extends Error {
  override name = 'PidFileBusyError'
  constructor (readonly file: string, readonly pid: number) {
    super(`another doorsense server (pid ${pid}) owns ${file}; stop it first or remove the file if that process is not doorsense`)
  }
}

/**
 * Claims the pid file for this process: refuses while a live process owns it,
 * replaces a stale one. The file is written under a temp name and hard-linked
 * into place, which fails if the file exists: two servers starting at once
 * cannot both win, and a reader never sees half a pid.
 * @returns the stale pid that was replaced, if any
 */
export function acquirePidFile (file: string, pid: number = process.pid): { stalePid?: number } {
  mkdirSync(dirname(file), { recursive: true })
  const temp = `${file}.${pid}.tmp`
  writeFileSync(temp, `${pid}\n`)
  try {
    try {
      linkSync(temp, file)
      return {}
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const existing = readPid(file)
    if (existing === pid) return {}
    if (existing !== undefined && isAlive(existing)) throw new PidFileBusyError(file, existing)
    unlinkSync(file)
    // a server that claimed the file in between makes this throw EEXIST: it won
    linkSync(temp, file)
    return existing === undefined ? {} : { stalePid: existing }
  } finally {
    unlinkSync(temp)
  }
}

/** Removes the pid file if (and only if) it still names `pid`. */
export function releasePidFile (file: string, pid: number = process.pid): boolean {
  if (readPid(file) !== pid) return false
  try {
    unlinkSync(file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}
