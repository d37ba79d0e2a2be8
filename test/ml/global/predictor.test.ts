import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { Value } from '@sinclair/typebox/value'
import { inputMatrix } from '../../../domain/features.js'
import { readSessionCsv, type SessionRow } from '../../../domain/session-csv.js'
import { applyStandardisation } from '../../../domain/standardise.js'
import { Predictor, predictionsFromProbabilities } from '../../../ml/global/predictor.js'
import { trainModel } from '../../../ml/global/trainer.js'
import { type TrainedModel } from '../../../ml/model-types.js'
import { Prediction } from '../../../schemas/model.js'
import { SESSION_A_CSV } from '../../helper.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const session = readSessionCsv(readFileSync(SESSION_A_CSV, 'utf8')).rows
const LABELS = [0, 15, 30, 45, 60, 75, 90]
const rows: SessionRow[] = []
for (const label of LABELS) rows.push(...session.filter((row) => row.angle === label).slice(0, 40))
const frames = rows.map((row) => row.features)
const angles = rows.map((row) => row.angle)
/** One small 7-class model shared by the tests (trained once: a few epochs on 40 rows per label). */
const trained: TrainedModel = await trainModel(tf, { kind: 'csi', features: frames, angles }, { epochs: 10, seed: 11 })

test('predict: one answer per frame, probabilities over the labels, closed = the 0° class', async (t) => {
  const predictor = await Predictor.load(tf, trained.artifacts, trained.meta)
  t.after(() => predictor.dispose())
  const batch = [frames[0], Array.from(frames[100]), frames[279]]
  const predictions = predictor.predict(batch)
  assert.equal(predictions.length, 3)
  for (const prediction of predictions) {
    assert.ok(Value.Check(Prediction, prediction), 'matches the Prediction schema')
    assert.equal(prediction.probabilities.length, 7)
    const sum = prediction.probabilities.reduce((a, b) => a + b, 0)
    assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`)
    const best = prediction.probabilities.indexOf(Math.max(...prediction.probabilities))
    assert.equal(prediction.angle, LABELS[best])
    assert.equal(prediction.confidence, prediction.probabilities[best])
    assert.equal(prediction.state, prediction.angle === 0 ? 'closed' : 'open')
  }
  assert.deepEqual(predictor.predict([]), [])
  // a frame alone gets the same answer as in a batch, to the last bit (a door's state must not depend on how frames were batched)
  assert.deepEqual(predictor.predict([frames[100]])[0], predictions[1])
})

test('a loaded predictor answers like the trained model did on the hold-out (same features, same statistics)', async (t) => {
  const predictor = await Predictor.load(tf, trained.artifacts, trained.meta)
  t.after(() => predictor.dispose())
  assert.ok(trained.holdout)
  const loaded = predictor.predict(trained.holdout.rows.map((row) => frames[row]))
  assert.deepEqual(loaded.map((p) => p.angle), trained.holdout.predictions.map((p) => p.angle))
  loaded.forEach((p, i) => assert.ok(Math.abs(p.confidence - (trained.holdout?.predictions[i].confidence ?? -1)) < 1e-5))
  const right = loaded.filter((p, i) => p.angle === angles[trained.holdout?.rows[i] ?? -1]).length
  assert.equal(right / loaded.length, trained.meta.evaluation?.accuracy)
})

/** The saved network run the standard way: tfjs' own predict() on the standardised features. */
async function referenceProbabilities (model: TrainedModel, batch: Float32Array[]): Promise<Float32Array> {
  const network = await tf.loadLayersModel(tf.io.fromMemory(model.artifacts))
  const { matrix, width, rows: count } = inputMatrix('csi', model.meta.featureSet, batch)
  applyStandardisation(matrix, model.meta.standardisation)
  const values = tf.tidy(() => (network.predict(tf.tensor2d(matrix, [count, width])) as tf.Tensor).dataSync() as Float32Array)
  network.dispose()
  return values
}

test('every architecture answers exactly what the saved Layers model computes', async () => {
  const batch = frames.filter((_, i) => i % 7 === 0)
  for (const architecture of ['softmax', 'original', 'mlp'] as const) {
    const model = await trainModel(tf, { kind: 'csi', features: frames, angles }, { epochs: 2, seed: 4, architecture, features: 'magnitudes' })
    // plain loops (the cpu backend's default) and tensor ops (a native backend's), a batch and a frame alone
    for (const forward of ['loops', 'tensors'] as const) {
      const predictor = await Predictor.load(tf, model.artifacts, model.meta, forward)
      for (const frames of [batch, batch.slice(0, 1)]) {
        const ours = predictor.probabilities(frames)
        const reference = await referenceProbabilities(model, frames)
        assert.equal(ours.length, reference.length)
        for (let i = 0; i < ours.length; i++) {
          const what = `${architecture} in ${forward}, ${frames.length} frame(s): probability ${i}`
          assert.ok(Math.abs(ours[i] - reference[i]) < 1e-5, `${what}: ${ours[i]} vs ${reference[i]}`)
        }
      }
      predictor.dispose()
    }
  }
})

test('a network of other layers still runs, through the Layers model', async () => {
  const network = tf.sequential()
  network.add(tf.layers.dense({ units: 5, activation: 'tanh', inputShape: [trained.meta.inputSize] }))
  network.add(tf.layers.dense({ units: 7, activation: 'softmax' }))
  let artifacts: tf.io.ModelArtifacts | undefined
  await network.save(tf.io.withSaveHandler(async (saved) => {
    artifacts = saved
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
  }))
  network.dispose()
  assert.ok(artifacts)
  const other: TrainedModel = { artifacts, meta: trained.meta }
  const predictor = await Predictor.load(tf, artifacts, trained.meta)
  const batch = frames.slice(0, 20)
  const ours = predictor.probabilities(batch)
  const reference = await referenceProbabilities(other, batch)
  predictor.dispose()
  for (let i = 0; i < ours.length; i++) assert.ok(Math.abs(ours[i] - reference[i]) < 1e-6)
})

test('no tensor leaks across 1,000 predictions; dispose frees the weights', async () => {
  const baseline = tf.memory().numTensors
  const predictor = await Predictor.load(tf, trained.artifacts, trained.meta)
  const loaded = tf.memory().numTensors
  assert.ok(loaded > baseline, 'the weights are tensors')
  const batch = frames.slice(0, 64)
  for (let i = 0; i < 1000; i++) predictor.predict(i % 10 === 0 ? batch : [frames[i % frames.length]])
  assert.equal(tf.memory().numTensors, loaded, 'stable across 1,000 predictions')
  predictor.dispose()
  assert.equal(tf.memory().numTensors, baseline)
  assert.throws(() => predictor.predict([frames[0]]), /disposed/)
})

test('bad frames and a meta that does not fit the network are refused with a message', async (t) => {
  const predictor = await Predictor.load(tf, trained.artifacts, trained.meta)
  t.after(() => predictor.dispose())
  assert.throws(() => predictor.predict([frames[0], frames[1].subarray(0, 53)]), /frame 1: a CSI frame must hold 106 values.*got 53/)
  const tensors = tf.memory().numTensors
  await assert.rejects(Predictor.load(tf, trained.artifacts, { ...trained.meta, labels: [0, 90] }), /does not fit its meta/)
  await assert.rejects(Predictor.load(tf, trained.artifacts, { ...trained.meta, featureSet: 'raw', inputSize: 106 }), /does not fit its meta/)
  assert.equal(tf.memory().numTensors, tensors, 'a refused model is disposed')
})

test('an RSSI model classifies one-value readings', async (t) => {
  const rssiAngles = [...Array(30).fill(0), ...Array(30).fill(90)]
  const readings = rssiAngles.map((angle, i) => [(angle === 0 ? -72 : -55) + (i % 5) - 2])
  const rssi = await trainModel(tf, { kind: 'rssi', features: readings, angles: rssiAngles }, { epochs: 40, seed: 2, architecture: 'original' })
  const predictor = await Predictor.load(tf, rssi.artifacts, rssi.meta)
  t.after(() => predictor.dispose())
  const [low, high] = predictor.predict([[-72], [-55]])
  assert.equal(low.state, 'closed')
  assert.equal(high.angle, 90)
  assert.throws(() => predictor.predict([frames[0]]), /an RSSI reading must be 1 value, got 106/)
})

test('predictionsFromProbabilities picks the most likely angle per row', () => {
  const predictions = predictionsFromProbabilities(Float32Array.from([0.7, 0.2, 0.1, 0.1, 0.3, 0.6]), [0, 45, 90])
  assert.deepEqual(predictions.map((p) => [p.angle, p.state]), [[0, 'closed'], [90, 'open']])
  assert.ok(Math.abs(predictions[1].confidence - 0.6) < 1e-6)
})
