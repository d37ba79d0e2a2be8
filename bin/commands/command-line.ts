/**
 * What the doorsense sub-commands share: where they write, how a wrong
 * command line is reported, and the epoch progress on stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { pidFilePath } from '../../core/pid-file.js'
import { HEALTH_PATH, healthUrl, liveServerPid, processEnvironment } from '../lib/server-process.js'

type OptionsConfig = NonNullable<ParseArgsConfig['options']>

/** Where a command writes (the process's streams, or a test's). */
export interface CommandIo {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown, isTTY?: boolean }
  /** where configuration is read (defaults to process.env) */
  env?: Record<string, string | undefined>
}

/** The process's own streams. */
export const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr }

/** A command-line mistake: the command prints it with its usage and exits non-zero. */
export class UsageError extends Error {}

/**
 * Named options only (no positionals), unknown ones refused.
 * @throws {UsageError} naming the option that is wrong
 */
export function parseOptions<const T extends OptionsConfig> (argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** Exit code of a command that would write a DATA_DIR a live server owns. */
export const EXIT_SERVER_RUNNING = 3

/** The live server that owns a DATA_DIR, and the URL it probably answers on. */
export interface OwningServer {
  pid: number
  pidFile: string
  /** From the server's own HOST and PORT where /proc shows them; undefined when it listens on any free port. */
  url: string | undefined
}

/**
 * The live doorsense server that owns `dataDir`, if any: its pid file names a
 * running bin/serve.ts. A pid file left behind by a server that is gone (or
 * naming a pid some other program now has) is no owner.
 */
export function owningServer (dataDir: string): OwningServer | undefined {
  const pidFile = pidFilePath(dataDir)
  const pid = liveServerPid(pidFile)
  if (pid === undefined) return undefined
  const env = processEnvironment(pid) ?? {}
  const port = env.PORT === undefined || env.PORT === '' ? '20002' : env.PORT
  const url = port === '0' ? undefined : healthUrl({ HOST: env.HOST || '127.0.0.1', PORT: Number(port) }).slice(0, -HEALTH_PATH.length)
  return { pid, pidFile, url }
}

/**
 * What a writing command says when a live server owns DATA_DIR. Two
 * processes writing one database and models folder would each keep its own
 * idea of the model versions, so the command leaves the writing to the
 * server: stop it, or send the work through it with --server.
 */
export function serverRunningMessage (command: string, dataDir: string, owner: OwningServer, argv: readonly string[]): string {
  const again = argv.map((arg) => /^[\w./:=@,+-]+$/.test(arg) ? arg : JSON.stringify(arg)).join(' ')
  return `refusing to write DATA_DIR ${dataDir}: the doorsense server with pid ${owner.pid} owns it (${owner.pidFile}). ` +
    `Either stop that server and run this again, or do it through the server: doorsense ${command} --server ${owner.url ?? 'URL'} ${again} ` +
    '(admin token from ADMIN_TOKEN, else DATA_DIR/admin-token)'
}

/**
 * Epoch progress on stderr: a redrawn bar on a terminal, else a line per
 * tenth of the run (`epoch 5/50<separator><figures>`).
 */
export function epochProgress (
  stderr: CommandIo['stderr'],
  separator = ' '
): { show: (epoch: number, epochs: number, figures: string) => void, end: () => void } {
  let drawn = false
  let last = 0
  return {
    show (epoch, epochs, figures) {
      // a polled run may skip epochs: a line when a tenth is crossed, not only when one is hit
      const step = Math.max(1, Math.round(epochs / 10))
      const crossed = Math.floor(epoch / step) > Math.floor(last / step)
      last = epoch
      if (stderr.isTTY) {
        const width = 30
        const done = Math.round(width * epoch / epochs)
        stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] epoch ${epoch}/${epochs} ${figures}\x1b[K`)
        drawn = true
      } else if (epoch === epochs || crossed) {
        stderr.write(`epoch ${epoch}/${epochs}${separator}${figures}\n`)
      }
    },
    end () {
      if (drawn) stderr.write('\n')
      drawn = false
    }
  }
}
