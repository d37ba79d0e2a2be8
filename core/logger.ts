import pino, { type Logger, type StreamEntry } from 'pino'
import pinoRoll from 'pino-roll'
import { join } from 'node:path'

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

export interface LoggerOptions {
  level: string
  dataDir: string
  toFile: boolean
}

/** A logger and the function that flushes and closes its file. */
export interface AppLogger {
  logger: Logger
  close: () => Promise<void>
}

/**
 * pino writing JSON lines to stdout and, unless disabled, to
 * DATA_DIR/logs/doorsense.<yyyy-MM-dd>.<n>.log, a new file each day. The file
 * stream is written from this thread (no transport worker), so closing it is
 * a plain end(), which also clears pino-roll's daily roll timer.
 */
export async function createLogger (options: LoggerOptions): Promise<AppLogger> {
  const streams: StreamEntry[] = [{ level: options.level as pino.Level, stream: process.stdout }]
  let file: Awaited<ReturnType<typeof pinoRoll>> | undefined
  // set once the file is closing or failed: later lines go to stdout only, since
  // a write to an ended file stream throws and would turn a late log line into a crash
  let fileDone = false
  let fileEnded = false
  if (options.toFile && options.level !== 'silent') {
    const stream = await pinoRoll({
      file: join(options.dataDir, LOG_DIR, 'doorsense'),
      frequency: 'daily',
      dateFormat: 'yyyy-MM-dd',
      extension: '.log',
      mkdir: true,
      limit: { count: 30 }
    })
    // a full disk must not take the server down: keep logging to stdout
    stream.on('error', (err: Error) => {
      if (!fileDone) process.stderr.write(`doorsense: log file disabled after a write error: ${err.message}\n`)
      fileDone = true
    })
    file = stream
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

/** Whether request/response lines are logged; flipped at run time by the debug area. */
export interface RequestLogging {
  enabled: boolean
}
