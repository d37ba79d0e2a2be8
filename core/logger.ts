import pino, { type Logger, type StreamEntry } from 'pino'
import pinoRoll from 'pino-roll'
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { makePrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js'

/**
 * What a service outside Fastify logs through: Fastify's logger and pino
 * children fit it as they are, and so does a CLI's four plain functions.
 */
export interface ServiceLog {
  debug: (object: object, message: string) => void
  info: (object: object, message: string) => void
  warn: (object: object, message: string) => void
  error: (object: object, message: string) => void
}

/** Folder (inside DATA_DIR) of the daily log files. */
export const LOG_DIR = 'logs'

/** Days of daily log files kept besides today's when LOG_RETENTION_DAYS is not given. */
export const DEFAULT_LOG_RETENTION_DAYS = 30

/** A daily log file's name as pino-roll writes it: doorsense.<yyyy-MM-dd>.<n>.log (local date). */
const LOG_FILE_NAME = /^doorsense\.(\d{4})-(\d{2})-(\d{2})\.\d+\.log$/

/**
 * Deletes the daily log files in `dir` dated more than `retentionDays`
 * calendar days before `now` (local time, as the files are named): 0 keeps
 * today's file only. Other files in the folder (the redeploy log, the
 * server's output log) are never touched.
 * @returns the names deleted
 */
export function pruneLogFiles (dir: string, retentionDays: number, now = new Date()): string[] {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime()
  const deleted: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return deleted
  }
  for (const name of names) {
    const match = LOG_FILE_NAME.exec(name)
    if (!match) continue
    const day = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])).getTime()
    // rounded: a day across a daylight-saving change is 23 or 25 hours long
    if (Math.round((today - day) / 86_400_000) <= retentionDays) continue
    try {
      unlinkSync(join(dir, name))
      deleted.push(name)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        process.stderr.write(`doorsense: could not delete the old log file ${join(dir, name)}: ${(err as Error).message}\n`)
      }
    }
  }
  return deleted
}

export interface LoggerOptions {
  level: string
  dataDir: string
  toFile: boolean
  /** Human-readable lines on stdout (pino-pretty) instead of JSON; default: whether stdout is a terminal. The file stays JSON. */
  pretty?: boolean
  /** Days of daily files kept besides today's (LOG_RETENTION_DAYS); older ones are deleted at start and at each daily roll. */
  retentionDays?: number
}

/**
 * Whether stdout gets pino-pretty's readable lines: only when it is a
 * terminal (`npm start` in a shell). Piped or redirected (systemd, docker,
 * a log shipper, the tests) it stays one JSON object per line.
 */
export function prettyOnTerminal (stdout: { isTTY?: boolean } = process.stdout): boolean {
  return stdout.isTTY === true
}

/** A logger and the function that flushes and closes its file. */
export interface AppLogger {
  logger: Logger
  close: () => Promise<void>
}

/**
 * pino writing to stdout (JSON lines, or pino-pretty's readable ones on a
 * terminal) and, unless disabled, JSON lines to
 * DATA_DIR/logs/doorsense.<yyyy-MM-dd>.<n>.log, a new file each day (mode
 * 0600, in a logs/ folder created 0700), files older than `retentionDays`
 * deleted at start and at each roll (see {@link pruneLogFiles}). Both streams are written from this
 * thread (pino-pretty as a stream, not as a transport worker), so nothing is
 * lost at exit and closing the file is a plain end(), which also clears
 * pino-roll's daily roll timer.
 */
export async function createLogger (options: LoggerOptions): Promise<AppLogger> {
  const streams: StreamEntry[] = [{ level: options.level as pino.Level, stream: await stdoutStream(options.pretty ?? prettyOnTerminal()) }]
  let file: Awaited<ReturnType<typeof pinoRoll>> | undefined
  // set once the file is closing or failed: later lines go to stdout only, since
  // a write to an ended file stream throws and would turn a late log line into a crash
  let fileDone = false
  let fileEnded = false
  if (options.toFile && options.level !== 'silent') {
    const dir = join(options.dataDir, LOG_DIR)
    // created here, not by pino-roll's mkdir (0755): the log holds addresses and device names
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
    const stream = await pinoRoll({
      file: join(dir, 'doorsense'),
      frequency: 'daily',
      dateFormat: 'yyyy-MM-dd',
      extension: '.log',
      mkdir: true,
      // each new file (and each daily roll) is created 0600
      mode: PRIVATE_FILE_MODE
      // no pino-roll `limit`: it deletes only files this process created, so a server
      // restarted more often than the limit never deleted any (pruneLogFiles below does)
    })
    // today's file (reused when it exists) may have been created by an older
    // build with 0644: tightened once it is open, and again after each roll
    const opened = new Promise<void>((resolve) => {
      stream.once('ready', () => resolve())
      stream.once('error', () => resolve())
    })
    const retentionDays = options.retentionDays ?? DEFAULT_LOG_RETENTION_DAYS
    // 'ready' comes once the file is open, and again after each daily roll
    stream.on('ready', () => {
      if (stream.file) makePrivate(stream.file)
      pruneLogFiles(dir, retentionDays)
    })
    // a full disk must not take the server down: keep logging to stdout
    stream.on('error', (err: Error) => {
      if (!fileDone) process.stderr.write(`doorsense: log file disabled after a write error: ${err.message}\n`)
      fileDone = true
    })
    file = stream
    await opened
    streams.push({ level: options.level as pino.Level, stream: { write: (line: string) => { if (!fileDone) stream.write(line) } } })
  }
  const logger = pino({
    level: options.level,
    redact: { paths: ['req.headers.authorization'], censor: '[redacted]' }
  }, pino.multistream(streams))
  return {
    logger,
    close: async () => {
      if (!file || fileEnded || file.destroyed) return
      fileEnded = true
      fileDone = true
      const stream = file
      // ending it (even after a write error) is what clears pino-roll's roll timer
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve())
        stream.once('error', () => resolve())
        stream.end()
      })
    }
  }
}

/** process.stdout itself, or pino-pretty writing to it (loaded only then: a server without a terminal never needs it). */
async function stdoutStream (pretty: boolean): Promise<pino.DestinationStream> {
  if (!pretty) return process.stdout
  const { default: pinoPretty } = await import('pino-pretty')
  return pinoPretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: 1, sync: true })
}

/** Whether request/response lines are logged; flipped at run time by the debug area. */
export interface RequestLogging {
  enabled: boolean
}
