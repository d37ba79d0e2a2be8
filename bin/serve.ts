/**
 * Starts the doorsense server: the only place that listens. Run it as
 * `node --import tsx bin/serve.ts` (`npm start`). Exit codes: 0 stopped
 * cleanly, 1 bad configuration or start-up failure (or a second stop signal),
 * 2 another live server owns the pid file.
 *
 * No shebang line: with one, tsx 4.23 fails to parse this file (its
 * dynamic-import rewrite chokes on the shebang plus esbuild's keepNames helper).
 */
import closeWithGrace from 'close-with-grace'
import type { App } from '../core/app.js'
import { ConfigError, loadConfig, type Config } from '../core/config.js'
import { acquirePidFile, PidFileBusyError, pidFilePath, releasePidFile } from '../core/pid-file.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT. */
const GRACE_MS = 8_000
/** A second stop signal sooner than this after the first is a duplicate, not an order to hurry. */
const DUPLICATE_SIGNAL_MS = 1_000

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`doorsense: ${err.message}`)
    process.exit(1)
  }
  throw err
}

const pidFile = pidFilePath(config.DATA_DIR)
let stalePid: number | undefined
try {
  stalePid = acquirePidFile(pidFile).stalePid
} catch (err) {
  if (err instanceof PidFileBusyError) {
    console.error(`doorsense: refusing to start: ${err.message}`)
    process.exit(2)
  }
  throw err
}

// Stop signals are caught from here on: one that arrives during the start-up
// stops the server as soon as it listens, and the pid file is not left behind.
let stopSignal: NodeJS.Signals | undefined
let stoppingSince: number | undefined
let listening = false

/**
 * Ctrl-C under `npm start` delivers SIGINT twice (from the terminal and again
 * from npm, which forwards it), so a repeat within DUPLICATE_SIGNAL_MS is the
 * same request; a later one means "stop now".
 */
function onStopSignal (signal: NodeJS.Signals): void {
  if (stoppingSince === undefined) {
    stoppingSince = Date.now()
    stopSignal = signal
    if (listening) beginStop()
  } else if (Date.now() - stoppingSince > DUPLICATE_SIGNAL_MS) {
    releasePidFile(pidFile)
    console.error(`doorsense: second ${signal} while stopping; exiting now`)
    process.exit(1)
  }
}
process.on('SIGINT', onStopSignal)
process.on('SIGTERM', onStopSignal)

let app: App
try {
  // loaded only now, so a bad variable or a refused start answers at once
  const { buildApp } = await import('../core/app.js')
  app = await buildApp(config)
  if (stalePid !== undefined) app.log.warn({ pidFile, stalePid }, 'replaced a stale pid file')
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  releasePidFile(pidFile)
  console.error(`doorsense: failed to start: ${(err as Error).message}`)
  process.exit(1)
}

const closer = closeWithGrace({
  delay: GRACE_MS,
  // SIGINT and SIGTERM are handled above, so a duplicated signal does not cut the grace short
  skip: ['SIGINT', 'SIGTERM'],
  onTimeout: () => {
    releasePidFile(pidFile)
    console.error(`doorsense: in-flight work did not finish within ${GRACE_MS} ms; exiting`)
  }
}, async ({ err }) => {
  if (err) app.log.error({ err }, 'stopping after an uncaught error')
  try {
    await app.close()
  } finally {
    releasePidFile(pidFile)
  }
})

listening = true
if (stoppingSince !== undefined) beginStop()

function beginStop (): void {
  app.log.info({ signal: stopSignal }, 'stopping: finishing in-flight requests')
  closer.close() // exits 0 once closed, 1 on timeout
}
