/**
 * The one way tests get a temp folder, a config and a whole app. Every app is
 * closed after its test (`t.after`), and every temp folder removed.
 */
import type { TestContext } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp, type App } from '../core/app.js'
import { PROJECT_ROOT } from '../core/project.js'
import { loadConfig, type Config } from '../core/config.js'

/** The real recordings (see test/fixtures/csi/README.md), read in place from the project's copy. */
export const CSI_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'csi')
export const SESSION_A_CSV = join(CSI_DIR, 'door-angles-session-a.csv')
export const RPI_RAW_FRAMES = join(CSI_DIR, 'rpi-raw-frames.txt')
export const ESP32_LINES = join(CSI_DIR, 'esp32-csi-tool-lines.csv')

/** Admin token every test app uses. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789'
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** A fresh temp folder removed when the test ends. */
export function tempDir (t: TestContext, prefix = 'doorsense-test-'): string {
  const dir = newTempDir(prefix)
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A config on `dataDir`, quiet, with a known admin token, the pure-JS model
 * backend and no load shedding; `env` overrides.
 */
export function testConfig (dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    LOG_TO_FILE: 'false',
    ADMIN_TOKEN,
    TF_BACKEND: 'cpu',
    // load shedding is tested on its own (test/core/app.test.ts); on a busy CI machine a
    // slow start would otherwise turn random requests into 503s
    MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env
  })
}

export interface TestAppOptions {
  /**
   * The DATA_DIR to build on, for a test that restarts the app on the same
   * data (from {@link tempDir}; the caller owns it). Default: a fresh temp dir.
   */
  dataDir?: string
}

/**
 * Builds the whole app on {@link testConfig} (`env` overrides) and waits until
 * it is ready. After the test it is closed (closing it earlier yourself is
 * fine: twice is harmless), then its temp data dir removed.
 */
export async function buildTestApp (t: TestContext, env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<App> {
  const dataDir = options.dataDir ?? newTempDir()
  const removeOwnDir = () => { if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true }) }
  let app: App
  try {
    app = await buildApp(testConfig(dataDir, env))
  } catch (err) {
    removeOwnDir()
    throw err
  }
  // `after` hooks run in the order they were added: close first, then remove the dir made here
  t.after(async () => {
    await app.close()
    removeOwnDir()
  })
  await app.ready()
  return app
}

function newTempDir (prefix = 'doorsense-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}
