import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp, type App } from '../../core/app.js'
import type { TrainingProgress, TrainingState } from '../../schemas/model.js'
import { buildTestApp, testConfig } from '../helper.js'
import { sessionSlice, trainingSet } from '../fixtures/training.js'

/** The statusCode and code of a thrown coded error. */
async function codeOf (promise: Promise<unknown> | (() => unknown)): Promise<{ statusCode?: number, code?: string, message: string }> {
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (err) {
    return err as { statusCode?: number, code?: string, message: string }
  }
  assert.fail('expected an error')
}

test('a training set the trainer cannot learn from is a 400 and the state does not move', async (t) => {
  const app = await buildTestApp(t)
  assert.equal(app.model.state, 'MODEL_DOESNT_EXIST')
  const oneLabel = sessionSlice(40).filter((row) => row.angle === 30)
  let err = await codeOf(app.model.startTraining(trainingSet(oneLabel)))
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /at least 2 door angles.*only 30°/)

  err = await codeOf(app.model.startTraining({ kind: 'csi', features: [], angles: [] }))
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /no samples/)

  const scarce = [...sessionSlice(20).filter((row) => row.angle !== 45), ...sessionSlice(20).filter((row) => row.angle === 45).slice(0, 4)]
  err = await codeOf(app.model.startTraining(trainingSet(scarce)))
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /at least 10 samples per door angle; too few for 45° \(4\)/)

  err = await codeOf(app.model.startTraining(trainingSet(sessionSlice(20)), { epochs: 0 }))
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /epochs/)

  err = await codeOf(app.model.startTraining({
    kind: 'rssi',
    features: sessionSlice(20).map((row) => row.features),
    angles: sessionSlice(20).map((row) => row.angle)
  }))
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /holds 106 values, a rssi model reads 1/)

  assert.equal(app.model.state, 'MODEL_DOESNT_EXIST')
  assert.equal(app.model.progress, undefined)
  assert.equal(app.model.lastFailure, undefined)
})

test('a training moves the FSM through its states, reports each epoch, refuses a second start with 409, then predicts', async (t) => {
  const app = await buildTestApp(t)
  const frames = sessionSlice(2, 100).map((row) => row.features)
  const noModel = await codeOf(() => app.model.predict(frames))
  assert.equal(noModel.statusCode, 503)
  assert.equal(noModel.code, 'DS_NO_MODEL')

  const states: TrainingState[] = []
  const progress: TrainingProgress[] = []
  const activated: string[] = []
  app.model.on('state', (state: TrainingState) => states.push(state))
  app.model.on('progress', (report: TrainingProgress) => progress.push(report))
  app.model.on('activated', (info: { version: string }) => activated.push(info.version))

  const { version } = await app.model.startTraining(trainingSet(sessionSlice(20)), { epochs: 4, seed: 5 })
  assert.equal(app.model.state, 'START_TRAINING', 'launched; the worker is still loading')
  const busy = await codeOf(app.model.startTraining(trainingSet(sessionSlice(20))))
  assert.equal(busy.statusCode, 409)
  assert.equal(busy.code, 'DS_TRAINING_BUSY')
  const busyActivate = await codeOf(app.model.activate(version))
  assert.equal(busyActivate.statusCode, 409)
  await app.model.waitForTraining()

  assert.deepEqual(states, ['START_TRAINING', 'TRAINING_IN_PROGRESS', 'FINISHED_TRAINING'])
  assert.equal(app.model.state, 'FINISHED_TRAINING')
  const epochs = progress.filter((report) => report.state === 'TRAINING_IN_PROGRESS' && report.epoch > 0)
  assert.deepEqual(epochs.map((report) => report.epoch), [1, 2, 3, 4])
  for (const report of epochs) {
    assert.equal(report.version, version)
    assert.equal(report.epochs, 4)
    assert.ok(Number.isFinite(report.loss) && Number.isFinite(report.accuracy))
    assert.ok(report.etaSeconds !== undefined && report.etaSeconds >= 0)
  }
  assert.equal(epochs.at(-1)?.etaSeconds, 0)
  assert.equal(progress.at(-1)?.state, 'FINISHED_TRAINING')
  assert.deepEqual(activated, [version])
  assert.equal(app.model.active?.version, version)
  assert.ok((app.model.lastTrainingSeconds ?? 0) > 0)

  const batch = app.model.predict(frames)
  assert.equal(batch.version, version)
  assert.deepEqual(batch.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(batch.predictions.length, frames.length)
  for (const prediction of batch.predictions) {
    assert.ok(batch.labels.includes(prediction.angle))
    assert.equal(prediction.state, prediction.angle === 0 ? 'closed' : 'open')
    assert.equal(prediction.probabilities.length, 7)
    assert.ok(Math.abs(prediction.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4)
  }
  assert.deepEqual(app.model.predict([]).predictions, [])
  const wrongWidth = await codeOf(() => app.model.predict([new Float32Array(105)]))
  assert.equal(wrongWidth.statusCode, 400)
  assert.match(wrongWidth.message, /frame 0 must hold 106 features, got 105/)
})

test('closing the app mid-training stops the worker; the next start reports the interrupted run', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-test-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const first: App = await buildApp(testConfig(dataDir))
  await first.ready()
  const { version } = await first.model.startTraining(trainingSet(sessionSlice(60)), { epochs: 1000 })
  const ended = first.model.waitForTraining()
  await first.close()
  await ended
  assert.equal(first.model.state, 'TRAINING_FAILED')
  assert.equal(first.model.lastFailure?.version, version)
  assert.match(first.model.lastFailure?.message ?? '', /stopped/)

  // and a run the process died in (its row still says running) is reported as interrupted
  const second: App = await buildApp(testConfig(dataDir))
  t.after(() => second.close())
  await second.ready()
  assert.equal(second.model.state, 'MODEL_DOESNT_EXIST')
  assert.equal(second.model.lastFailure?.version, version)
  assert.deepEqual(await second.model.versions(), [])
  second.storage.db
    .prepare("INSERT INTO model_trainings (version, kind, started_at, status) VALUES ('csi-crashed', 'csi', '2025-01-01T00:00:00.000Z', 'running')")
    .run()
  await second.close()
  const third: App = await buildApp(testConfig(dataDir))
  t.after(() => third.close())
  await third.ready()
  assert.equal(third.model.lastFailure?.version, 'csi-crashed')
  assert.match(third.model.lastFailure?.message ?? '', /interrupted: the server stopped or crashed while it ran/)
})
