import { parseArgs } from 'node:util'
import { ConfigError, loadConfig, type Config } from '../../core/config.js'

/** A bad flag or variable: the script prints it with its usage and exits 1. */
export class UsageError extends Error {}

/** The parsed flags of an ops script, each falling back to an environment variable. */
export class OpsFlags {
  constructor (
    private readonly values: Record<string, string | boolean | undefined>,
    private readonly env: Record<string, string | undefined>
  ) {}

  /** The flag's value, else the variable's (an empty variable counts as unset). */
  text (flag: string, variable: string): string | undefined {
    const value = this.values[flag]
    if (typeof value === 'string') return value
    const fromEnv = this.env[variable]
    return fromEnv === '' ? undefined : fromEnv
  }

  /** A boolean flag, else whether the variable says 1/true/yes. */
  yes (flag: string, variable: string): boolean {
    const value = this.values[flag]
    if (typeof value === 'boolean') return value
    return /^(1|true|yes)$/i.test(this.env[variable] ?? '')
  }

  /** A positive number of seconds, returned in milliseconds. */
  milliseconds (flag: string, variable: string, fallbackSeconds: number): number {
    return this.positive(flag, variable, fallbackSeconds, 'number of seconds') * 1000
  }

  /** A positive whole number. */
  count (flag: string, variable: string, fallback: number): number {
    return this.positive(flag, variable, fallback, 'whole number')
  }

  private positive (flag: string, variable: string, fallback: number, kind: 'number of seconds' | 'whole number'): number {
    const text = this.text(flag, variable)
    if (text === undefined) return fallback
    const value = Number(text)
    if (!Number.isFinite(value) || value <= 0 || (kind === 'whole number' && !Number.isInteger(value))) {
      throw new UsageError(`--${flag} (or ${variable}) must be a positive ${kind} (got ${JSON.stringify(text)})`)
    }
    return value
  }
}

/**
 * The common start of the ops scripts: parses `argv` with the given flags
 * (plus --help), turns them into the script's options and loads the server
 * settings from the environment. Prints the usage for --help (returns 0) or
 * the problem with a bad flag or variable (returns 1).
 */
export function startOps<T> (
  tool: string,
  argv: string[],
  usage: string,
  flags: Record<string, 'string' | 'boolean'>,
  build: (flags: OpsFlags) => T
): { options: T, config: Config } | number {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...Object.fromEntries(Object.entries(flags).map(([name, type]) => [name, { type }])),
        help: { type: 'boolean', short: 'h' }
      }
    })
    if (values.help === true) {
      console.log(usage)
      return 0
    }
    return { options: build(new OpsFlags(values, process.env)), config: loadConfig(process.env) }
  } catch (err) {
    const usageProblem = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true
    if (!usageProblem && !(err instanceof ConfigError)) throw err
    console.error(`${tool}: ${(err as Error).message}`)
    if (usageProblem) console.error(usage)
    return 1
  }
}
