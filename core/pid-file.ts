import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js'

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

/** The server's entry script, as the command line of a running doorsense server names it. */
export const SERVER_ENTRY = 'bin/serve.ts'

/**
 * Whether `pid` may be the owner of a pid file: alive and, where /proc tells,
 * running `entry` (a command-line argument ends with it), or without `entry`
 * a node process. After a reboot or in a fresh container the recorded pid
 * often belongs to something else (pid 1 is init, another node program),
 * which must not block the start.
 */
export function isServerAlive (pid: number, entry?: string): boolean {
  if (!isAlive(pid)) return false
  let commandLine: string[]
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    return true // no /proc (macOS) or not readable: trust the pid
  }
  // a zombie or a kernel thread has no command line: no server either
  if (entry !== undefined) return commandLine.some((arg) => arg.endsWith(entry))
  const program = basename(commandLine[0] ?? '')
  return program === '' || program.includes('node')
}

/** Thrown when a live process already owns the pid file. */
export class PidFileBusyError extends Error {
  override name = 'PidFileBusyError'
  constructor (readonly file: string, readonly pid: number) {
    super(`another doorsense server (pid ${pid}) owns ${file}; stop it first or remove the file if that process is not doorsense`)
  }
}

/** What {@link acquirePidFile} takes for a live owner. */
export interface PidFileOwner {
  /** The script the owner runs (see {@link isServerAlive}); unset: any node process. */
  entry?: string
}

/**
 * Claims the pid file for this process: refuses while a live owner holds it
 * (a process running `owner.entry`: bin/serve.ts passes {@link SERVER_ENTRY}),
 * replaces a stale one. The file is written under a temp name and hard-linked
 * into place, which fails if the file exists: two servers starting at once
 * cannot both win, and a reader never sees half a pid.
 * @returns the stale pid that was replaced, if any
 */
export function acquirePidFile (file: string, pid: number = process.pid, owner: PidFileOwner = {}): { stalePid?: number } {
  const ownerAlive = (candidate: number): boolean => isServerAlive(candidate, owner.entry)
  // the pid file is usually what creates DATA_DIR (bin/serve.ts claims it first): the owner's only
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
  // a live owner is refused before anything is written: on a full disk too
  const current = readPid(file)
  if (current !== undefined && current !== pid && ownerAlive(current)) throw new PidFileBusyError(file, current)
  const temp = `${file}.${pid}.tmp`
  try {
    // inside the try: a disk that fills while it is written leaves no empty temp file behind
    writeFileSync(temp, `${pid}\n`, { mode: PRIVATE_FILE_MODE })
    if (tryLink(temp, file)) return {}
    const existing = readPid(file)
    if (existing === pid) return {}
    if (existing !== undefined && ownerAlive(existing)) throw new PidFileBusyError(file, existing)
    // Move the stale file aside rather than unlink it: if another starter
    // replaced it in between, what we moved is its fresh claim, and we put it back.
    const aside = `${file}.${pid}.stale`
    try {
      renameSync(file, aside)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const moved = readPid(aside)
    if (moved !== undefined && moved !== existing && ownerAlive(moved)) {
      tryLink(aside, file)
      rmSync(aside, { force: true })
      throw new PidFileBusyError(file, moved)
    }
    rmSync(aside, { force: true })
    if (!tryLink(temp, file)) {
      const winner = readPid(file)
      throw new PidFileBusyError(file, winner ?? 0)
    }
    return existing === undefined ? {} : { stalePid: existing }
  } finally {
    rmSync(temp, { force: true })
  }
}

/** Hard-links `from` to `to`; false when `to` exists. */
function tryLink (from: string, to: string): boolean {
  try {
    linkSync(from, to)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
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
