#!/usr/bin/env -S node --import tsx
/**
 * Starts the doorsense server: the only place that listens. Exit codes:
 * 0 stopped cleanly, 1 bad configuration or start-up failure, 2 another live
 * server owns the pid file.
 */
import closeWithGrace from 'close-with-grace'
import { buildApp } from '../core/app.js'
import { ConfigError, loadConfig, type Config } from '../core/config.js'
import { acquirePidFile, PidFileBusyError, pidFilePath, releasePidFile } from '../core/pid-file.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT. */
const GRACE_MS = 8_000

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

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp(config)
  if (stalePid !== undefined) app.log.warn({ pidFile, stalePid }, 'replaced a stale pid file')
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  releasePidFile(pidFile)
  console.error(`doorsense: failed to start: ${(err as Error).message}`)
  process.exit(1)
}

closeWithGrace({
  delay: GRACE_MS,
  onTimeout: () => {
    releasePidFile(pidFile)
    console.error(`doorsense: in-flight work did not finish within ${GRACE_MS} ms; exiting`)
  }
}, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'stopping after an uncaught error')
  else app.log.info({ signal }, 'stopping: finishing in-flight requests')
  try {
    await app.close()
  } finally {
    releasePidFile(pidFile)
  }
})
