import type { TestContext } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { buildApp, PROJECT_ROOT, type App } from '../core/app.js'
import { loadConfig, type Config } from '../core/config.js'

/** The shared real recordings, read in place (never copied into the project). */
export const CSI_DIR = resolve(PROJECT_ROOT, '../shared/data/csi')
export const SESSION_A_CSV = join(CSI_DIR, 'door-angles-session-a.csv')
export const RPI_RAW_FRAMES = join(CSI_DIR, 'rpi-raw-frames.txt')
export const ESP32_LINES = join(CSI_DIR, 'esp32-csi-tool-lines.csv')

/** Admin token every test app uses. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789'
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** A fresh temp folder removed when the test ends. */
export function tempDir (t: TestContext, prefix = 'doorsense-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A config on `dataDir`, quiet, with a known admin token and the pure-JS model backend; `env` overrides. */
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

/** Builds the whole app on a temp data dir; after the test it is closed, then the dir removed. */
export async function buildTestApp (t: TestContext, env: Record<string, string> = {}): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-test-'))
  const app = await buildApp(testConfig(dataDir, env))
  t.after(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  await app.ready()
  return app
}
