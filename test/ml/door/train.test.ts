import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { trainDoorModel } from '../../../ml/door/train.js'
import { calibration, slice } from '../../fixtures/door-model.js'

await tf.setBackend('cpu')
tf.enableProdMode()

test('trains on 100 frames per angle in seconds, without leaking tensors', async () => {
  const before = tf.memory().numTensors
  const started = performance.now()
  const trained = await trainDoorModel(tf, calibration, { seed: 3 })
  const trainMs = performance.now() - started
  assert.equal(tf.memory().numTensors, before)
  assert.ok(trainMs < 20_000, `training took ${trainMs.toFixed(0)} ms`)
  const meta = trained.meta
  assert.deepEqual(meta.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(meta.inputSize, 206)
  assert.equal(meta.trainWindows, 7 * (100 - meta.window + 1))
  assert.ok(meta.novelty.rows <= 256 && meta.novelty.rows > 0)
  assert.ok(meta.novelty.threshold > 0)
})

test('refuses a calibration without the closed door or with too few frames', async () => {
  const noClosed = { frames: calibration.frames.filter((_, i) => calibration.angles[i] !== 0), angles: calibration.angles.filter((a) => a !== 0) }
  await assert.rejects(trainDoorModel(tf, noClosed), /closed door \(0°\) and of at least one open angle/)
  const few = slice(0, 30)
  await assert.rejects(trainDoorModel(tf, few), /each angle needs at least 50 \(two windows of 25\), got 30 for 0°/)
  await assert.rejects(trainDoorModel(tf, calibration, { window: 1 }), /window must be an integer in 2\.\.256, got 1/)
})
