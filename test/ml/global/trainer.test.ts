import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { readSessionCsv, type SessionRow } from '../../../domain/session-csv.js'
import { DEFAULT_TRAINING_OPTIONS, resolveTrainingOptions, trainModel } from '../../../ml/global/trainer.js'
import { type EpochReport } from '../../../ml/model-types.js'
import { MIN_ROWS_PER_LABEL, type TrainingSet } from '../../../ml/training-set.js'
import { SESSION_A_CSV } from '../../helper.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const session = readSessionCsv(readFileSync(SESSION_A_CSV, 'utf8')).rows

/** The first `perLabel` rows of each listed label, in file order (a small slice of the real recording). */
function slice (labels: number[], perLabel: number): TrainingSet {
  const rows: SessionRow[] = []
  for (const label of labels) rows.push(...session.filter((row) => row.angle === label).slice(0, perLabel))
  return { kind: 'csi', features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
}

test('an easy pair of real labels is learnt well above chance, with a full report and no leaked tensor', async () => {
  // 15° and 30° are told apart reliably on a blocked split of session A (measured: 1.00 over 3 seeds);
  // chance is .5. The last 8 of each label's 40 rows are the test part.
  const input = slice([15, 30], 40)
  const tensorsBefore = tf.memory().numTensors
  const reports: EpochReport[] = []
  const trained = await trainModel(tf, input, { epochs: 30, seed: 7 }, (report) => reports.push(report))
  assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor the training made is disposed')

  const { meta } = trained
  assert.ok(meta.evaluation, 'evaluated on the hold-out')
  assert.ok(meta.evaluation.accuracy >= 0.8, `accuracy ${meta.evaluation.accuracy} on 15° vs 30°`)
  assert.equal(meta.evaluation.testRows, 16)
  assert.equal(meta.evaluation.trainRows, 64)
  assert.deepEqual(meta.labels, [15, 30])
  assert.equal(meta.featureSet, DEFAULT_TRAINING_OPTIONS.features)
  assert.equal(meta.inputSize, 103)
  assert.equal(meta.standardisation.mean.length, 103)
  assert.deepEqual(meta.options, { ...DEFAULT_TRAINING_OPTIONS, epochs: 30, seed: 7 })
  assert.equal(meta.epochsTrained, 30)
  assert.ok(meta.trainingSeconds > 0)

  assert.deepEqual(reports.map((report) => report.epoch), Array.from({ length: 30 }, (_, i) => i + 1))
  assert.ok(reports.every((report) => Number.isFinite(report.loss) && report.epochs === 30 && report.validationAccuracy !== undefined))
  assert.ok(reports[29].loss < reports[0].loss, 'the loss went down')

  // the hold-out predictions are the tails, in order, and agree with the evaluation
  assert.ok(trained.holdout)
  assert.deepEqual(trained.holdout.rows, [32, 33, 34, 35, 36, 37, 38, 39, 72, 73, 74, 75, 76, 77, 78, 79])
  const right = trained.holdout.rows.filter((row, i) => trained.holdout?.predictions[i].angle === input.angles[row]).length
  assert.equal(right / 16, meta.evaluation.accuracy)

  // the artifacts are a loadable Layers model: topology and weights of a 103 → 2 softmax
  assert.ok(trained.artifacts.modelTopology)
  assert.deepEqual(trained.artifacts.weightSpecs?.map((spec) => spec.shape), [[103, 2], [2]])
})

test('standardisation statistics come from the train rows only', async () => {
  const input = slice([0, 90], 20)
  const trained = await trainModel(tf, input, { epochs: 1, seed: 1, features: 'raw' })
  // by hand: the first 16 rows of each label are the train part (holdout .2 of 20 = the last 4)
  const trainRows = [...Array.from({ length: 16 }, (_, i) => i), ...Array.from({ length: 16 }, (_, i) => 20 + i)]
  const column = 3 // CH9_mag
  const trainMean = trainRows.reduce((sum, row) => sum + input.features[row][column], 0) / trainRows.length
  const allMean = input.features.reduce((sum, features) => sum + features[column], 0) / input.features.length
  assert.ok(Math.abs(trained.meta.standardisation.mean[column] - trainMean) < 1e-4, `${trained.meta.standardisation.mean[column]} vs train mean ${trainMean}`)
  assert.ok(Math.abs(allMean - trainMean) > 1e-3, 'the test rows would have moved the mean')
  // CH32 is constant 0: std stored as 1, mean 0
  assert.equal(trained.meta.standardisation.std[26], 1)
  assert.equal(trained.meta.standardisation.mean[26], 0)
})

test('the same seed gives the same model; holdout 0 trains on every row without an evaluation', async () => {
  const input = slice([30, 45, 60], 15)
  const first = await trainModel(tf, input, { epochs: 3, seed: 42 })
  const second = await trainModel(tf, input, { epochs: 3, seed: 42 })
  assert.deepEqual(new Uint8Array(first.artifacts.weightData as ArrayBuffer), new Uint8Array(second.artifacts.weightData as ArrayBuffer))
  const other = await trainModel(tf, input, { epochs: 3, seed: 43 })
  assert.notDeepEqual(new Uint8Array(first.artifacts.weightData as ArrayBuffer), new Uint8Array(other.artifacts.weightData as ArrayBuffer))

  const full = await trainModel(tf, input, { epochs: 2, holdout: 0 })
  assert.equal(full.meta.evaluation, undefined)
  assert.equal(full.holdout, undefined)
  assert.equal(typeof full.meta.options.seed, 'number', 'a drawn seed is recorded so the run can be repeated')
})

test('early stopping watches a slice of the train part and stops on it', async () => {
  const input = slice([0, 15, 30, 45, 60, 75, 90], 30)
  const reports: EpochReport[] = []
  const tensorsBefore = tf.memory().numTensors
  const trained = await trainModel(tf, input, { epochs: 300, seed: 3, earlyStopping: true, architecture: 'original', l2: 0 }, (report) => reports.push(report))
  assert.equal(tf.memory().numTensors, tensorsBefore, 'the kept best weights are freed too')
  assert.ok(trained.meta.epochsTrained !== undefined && trained.meta.epochsTrained < 300, `stopped after ${trained.meta.epochsTrained} epochs`)
  assert.equal(reports.length, trained.meta.epochsTrained)
  assert.ok(reports.every((report) => report.validationLoss !== undefined))
  // the hold-out is still each label's last 20 %, evaluated once at the end
  assert.equal(trained.meta.evaluation?.testRows, 7 * 6)
  assert.equal(trained.meta.evaluation?.trainRows, 7 * 24)
})

test('the other architectures and feature sets train too', async () => {
  const input = slice([15, 30], 20)
  for (const [architecture, features, width] of [['mlp', 'magnitudes', 52], ['original', 'raw', 106]] as const) {
    const trained = await trainModel(tf, input, { epochs: 2, seed: 1, architecture, features })
    assert.equal(trained.meta.inputSize, width)
    assert.equal(trained.meta.options.architecture, architecture)
  }
})

test('RSSI: a one-value model trains on readings (legacy kind)', async () => {
  // two door states that shift the received power by ~12 dB, with a repeating ±2 dB ripple
  const ripple = [-2, -1, 0, 1, 2, 1, 0, -1]
  const angles = [...Array(40).fill(0), ...Array(40).fill(90)]
  const features = angles.map((angle, i) => [(angle === 0 ? -70 : -58) + ripple[i % ripple.length]])
  const trained = await trainModel(tf, { kind: 'rssi', features, angles }, { epochs: 40, seed: 5, architecture: 'original' })
  assert.equal(trained.meta.inputSize, 1)
  assert.equal(trained.meta.featureSet, 'raw')
  assert.ok((trained.meta.evaluation?.accuracy ?? 0) >= 0.9, `accuracy ${trained.meta.evaluation?.accuracy}`)
})

test('too few rows or labels, bad options and bad rows fail with a message that says so', async () => {
  const one = slice([45], 30)
  await assert.rejects(trainModel(tf, one, { epochs: 1 }), /at least 2 door angles; the csi dataset has only 45°/)
  const scarce = slice([0, 45, 90], 30)
  const fewer = { kind: 'csi' as const, features: scarce.features.slice(0, 65), angles: scarce.angles.slice(0, 65) }
  await assert.rejects(trainModel(tf, fewer, { epochs: 1 }), new RegExp(`at least ${MIN_ROWS_PER_LABEL} samples per door angle; too few for 90° \\(5\\)`))
  await assert.rejects(trainModel(tf, { kind: 'csi', features: [], angles: [] }), /the csi dataset has no samples/)
  await assert.rejects(trainModel(tf, scarce, { epochs: 0 }), /training option epochs/)
  await assert.rejects(trainModel(tf, scarce, { kind: 'rssi' }), /kind "rssi" does not match the csi rows/)
  const broken = { ...scarce, features: scarce.features.map((row, i) => (i === 4 ? Float32Array.from(row, (v, j) => (j === 7 ? Number.NaN : v)) : row)) }
  await assert.rejects(trainModel(tf, broken, { epochs: 1 }), /row 4: value 7 is not a finite number/)
  await assert.rejects(trainModel(tf, { ...scarce, angles: scarce.angles.map((a, i) => (i === 2 ? 120 : a)) }, { epochs: 1 }), /row 2: angle must lie in 0..90/)

  assert.throws(() => resolveTrainingOptions({ batchSize: 1.5 }), /training option batchSize/)
  assert.throws(() => resolveTrainingOptions({ kind: 'rssi', features: 'magnitudes' }), /needs CSI frames/)
  assert.throws(() => resolveTrainingOptions({ epochs: 5, colour: 'red' } as never), /training option/)
  assert.deepEqual(resolveTrainingOptions({ kind: 'rssi' }).features, 'raw')
  assert.deepEqual(resolveTrainingOptions(), { ...DEFAULT_TRAINING_OPTIONS })
})
