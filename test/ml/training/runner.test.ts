import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadBackend } from '../../../ml/backend.js'
import { Predictor } from '../../../ml/global/predictor.js'
import { startTrainingRun, TrainingStoppedError, type RunnerMode } from '../../../ml/training/runner.js'
import type { TrainingJob } from '../../../ml/training/worker.js'
import { packTrainingSet } from '../../../ml/training-set.js'
import type { EpochReport } from '../../../ml/model-types.js'
import { sessionSlice } from '../../fixtures/training.js'

/** A job over `perLabel` rows of each label of session A. */
function job (perLabel: number, epochs: number): TrainingJob {
  const slice = sessionSlice(perLabel)
  const set = packTrainingSet({ kind: 'csi', features: slice.map((row) => row.features), angles: slice.map((row) => row.angle) })
  return { backend: 'cpu', set, options: { epochs, seed: 3 } }
}

for (const mode of ['thread', 'process'] as RunnerMode[]) {
  test(`a run in a ${mode} reports its start and every epoch, and returns a model that loads`, async () => {
    const epochs: EpochReport[] = []
    let startedOn: string | undefined
    const run = startTrainingRun(job(20, 4), mode, { onStarted: (backend) => { startedOn = backend }, onEpoch: (report) => epochs.push(report) })
    await run.started
    assert.equal(startedOn, 'cpu')
    const model = await run.result
    assert.deepEqual(epochs.map((report) => report.epoch), [1, 2, 3, 4])
    assert.ok(epochs.every((report) => report.epochs === 4 && Number.isFinite(report.loss)))
    assert.ok(model.artifacts.weightData instanceof ArrayBuffer, 'the weights arrive as one ArrayBuffer')
    assert.deepEqual(model.meta.labels, [0, 15, 30, 45, 60, 75, 90])
    const { tf } = await loadBackend('cpu')
    const predictor = await Predictor.load(tf, model.artifacts, model.meta)
    try {
      const predictions = predictor.predict(sessionSlice(1).map((row) => row.features))
      assert.equal(predictions.length, 7)
    } finally {
      predictor.dispose()
    }
    await run.stop() // after the end: a no-op
  })
}

test('stop() ends a running worker at once and the result says so', async () => {
  const run = startTrainingRun(job(60, 1000), 'thread')
  await run.started
  const stopping = run.stop()
  await assert.rejects(run.result, TrainingStoppedError)
  await stopping
})

test('the trainer\'s error comes back as the run\'s error', async () => {
  // 3 rows per label: the trainer refuses, naming the problem
  const run = startTrainingRun(job(3, 2), 'thread')
  await assert.rejects(run.result, /too few for/)
})
