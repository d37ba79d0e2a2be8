/**
 * Timestamped lines for the operations scripts (redeploy, watchdog): what
 * each step runs, and how long it took. Plain text, one line per event, so a
 * cron mail, the journal or DATA_DIR/logs/redeploy.log read well as they are.
 */
export interface OpsLog {
  info (message: string): void
  /** written to stderr, so cron mails and CI logs show it apart */
  error (message: string): void
  /** Logs `runs`, runs `action`, then logs how long it took and whether it failed (and rethrows). */
  step<T> (name: string, runs: string, action: () => Promise<T>): Promise<T>
}

/** Seconds with two decimals, as every duration in these logs is printed. */
export function seconds (ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`
}

/** A log for `tool` writing to stdout (errors to stderr). */
export function createOpsLog (tool: string): OpsLog {
  const line = (message: string): string => `${new Date().toISOString()} ${tool}: ${message}\n`
  return {
    info: (message) => { process.stdout.write(line(message)) },
    error: (message) => { process.stderr.write(line(`ERROR ${message}`)) },
    async step (name, runs, action) {
      process.stdout.write(line(`${name}: ${runs}`))
      const started = performance.now()
      try {
        const result = await action()
        process.stdout.write(line(`${name}: ok in ${seconds(performance.now() - started)}`))
        return result
      } catch (err) {
        process.stdout.write(line(`${name}: FAILED after ${seconds(performance.now() - started)}: ${errorText(err)}`))
        throw err
      }
    }
  }
}

/** The one-line message of an error (execa's shortMessage when it has one). */
export function errorText (err: unknown): string {
  const short = (err as { shortMessage?: string }).shortMessage
  return short ?? (err instanceof Error ? err.message : String(err))
}
