/**
 * Real data and a real model for the inference tests: slices of the recorded
 * session A, and a small tfjs model trained on them through app.model (the
 * same code path as the server).
 */
import { readFileSync } from 'node:fs'
import type { SessionRow } from '../../../domain/session-csv.js'
import type { TrainingOptions } from '../../../schemas/model.js'
import type { App } from '../../../core/app.js'
import { buildTestApp, RPI_RAW_FRAMES, ESP32_LINES } from '../../helper.js'
import type { TestContext } from 'node:test'
import { sessionSlice } from '../model/training-fixture.js'

export { sessionSlice }

/** A row as the original Pis post it: the stringified list of 106 numbers. */
export function stringified (row: SessionRow): string {
  return `[${Array.from(row.features).join(', ')}]`
}

/** Raw Pi frames (108 integers, as a JSON array) as a receiver forwards them. */
export function rawPiFrames (): number[][] {
  return readFileSync(RPI_RAW_FRAMES, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as number[])
}

/** Whole `CSI_DATA,…,[…]` lines printed by an ESP32. */
export function esp32Lines (): string[] {
  return readFileSync(ESP32_LINES, 'utf8').split('\n').filter((line) => line.startsWith('CSI_DATA'))
}

/**
 * Trains a small model on `perLabel` rows of each label of session A and
 * waits until it is the active version.
 * @returns the new version
 */
export async function trainSmallModel (app: App, perLabel = 40, options: TrainingOptions = {}): Promise<string> {
  const slice = sessionSlice(perLabel)
  const { version } = await app.model.startTraining(
    { kind: 'csi', features: slice.map((row) => row.features), angles: slice.map((row) => row.angle) },
    { epochs: 5, seed: 1, ...options }
  )
  await app.model.waitForTraining()
  await calm(app)
  if (app.model.active?.version !== version) throw new Error(`training ${version} did not become active (state ${app.model.state}, ${app.model.lastFailure?.message})`)
  return version
}

/**
 * Waits (up to 10 s) until @fastify/under-pressure no longer sheds load. On a
 * busy shared machine a slow start stalls the event loop for over a second,
 * and the next sample would answer 503 to a test's first request.
 */
export async function calm (app: App): Promise<void> {
  const deadline = Date.now() + 10_000
  while (app.isUnderPressure() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

/** buildTestApp, then {@link calm}. */
export async function buildCalmApp (t: TestContext, env: Record<string, string> = {}): Promise<App> {
  const app = await buildTestApp(t, env)
  await calm(app)
  return app
}
