/**
 * Real data and real models for the model-area tests: slices of session A,
 * and small tfjs models trained on them with the project's trainer.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { buildApp, type App } from '../../../core/app.js'
import { readSessionCsv, SESSION_CSV_COLUMNS, type SessionRow } from '../../../domain/session-csv.js'
import { loadBackend } from '../../../plugins/model/backend.js'
import { trainModel, type TrainedModel } from '../../../plugins/model/trainer.js'
import type { TrainingOptions } from '../../../schemas/model.js'
import { SESSION_A_CSV, testConfig } from '../../helper.js'

let rows: SessionRow[] | undefined

/** Every row of session A, in file order (grouped by label). */
export function sessionRows (): SessionRow[] {
  rows ??= readSessionCsv(readFileSync(SESSION_A_CSV, 'utf8')).rows
  return rows
}

/** The first `perLabel` rows of each label (after skipping `skip` of each), in file order. */
export function sessionSlice (perLabel: number, skip = 0): SessionRow[] {
  const seen = new Map<number, number>()
  return sessionRows().filter((row) => {
    const index = seen.get(row.angle) ?? 0
    seen.set(row.angle, index + 1)
    return index >= skip && index < skip + perLabel
  })
}

/** A slice as the training set a run takes. */
export function trainingSet (slice: readonly SessionRow[]): { kind: 'csi', features: Float32Array[], angles: number[] } {
  return { kind: 'csi', features: slice.map((row) => row.features), angles: slice.map((row) => row.angle) }
}

/** The session-CSV text of some rows (header included), as a file or an upload holds them. */
export function sessionCsv (slice: readonly SessionRow[]): string {
  const lines = slice.map((row) => [row.angle, ...Array.from(row.features)].join(','))
  return [SESSION_CSV_COLUMNS.join(','), ...lines].join('\n') + '\n'
}

/** A small model trained in this thread on `perLabel` rows of each label. */
export async function trainSmall (perLabel = 20, options: TrainingOptions = {}): Promise<TrainedModel> {
  const { tf } = await loadBackend('cpu')
  const slice = sessionSlice(perLabel)
  return trainModel(tf, trainingSet(slice), { epochs: 3, seed: 7, ...options })
}

/** A data folder that outlives app restarts within a test; removed after it. */
export function persistentDataDir (t: TestContext): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-test-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  return dataDir
}

/** Builds the app on `dataDir`, as a restarted server would; closed when the test ends (closing twice is harmless). */
export async function appOn (t: TestContext, dataDir: string): Promise<App> {
  const app = await buildApp(testConfig(dataDir))
  t.after(() => app.close())
  await app.ready()
  return app
}

/** Trains on `perLabel` rows of each label through app.model and waits for the new active version. */
export async function trainThrough (app: App, perLabel: number, seed: number): Promise<string> {
  const { version } = await app.model.startTraining(trainingSet(sessionSlice(perLabel)), { epochs: 4, seed })
  await app.model.waitForTraining()
  assert.equal(app.model.state, 'FINISHED_TRAINING', app.model.lastFailure?.message)
  return version
}
