/**
 * What the doorsense sub-commands share: where they write, how a wrong
 * command line is reported, and the epoch progress on stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

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

/**
 * Epoch progress on stderr: a redrawn bar on a terminal, else a line per
 * tenth of the run (`epoch 5/50<separator><figures>`).
 */
export function epochProgress (stderr: CommandIo['stderr'], separator = ' '): { show: (epoch: number, epochs: number, figures: string) => void, end: () => void } {
  let drawn = false
  return {
    show (epoch, epochs, figures) {
      if (stderr.isTTY) {
        const width = 30
        const done = Math.round(width * epoch / epochs)
        stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] epoch ${epoch}/${epochs} ${figures}\x1b[K`)
        drawn = true
      } else if (epoch === epochs || epoch % Math.max(1, Math.round(epochs / 10)) === 0) {
        stderr.write(`epoch ${epoch}/${epochs}${separator}${figures}\n`)
      }
    },
    end () {
      if (drawn) stderr.write('\n')
      drawn = false
    }
  }
}
