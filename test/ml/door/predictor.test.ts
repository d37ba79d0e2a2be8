import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { permuteSubcarriers, windowNovelty } from '../../../ml/door/evaluation.js'
import type { DoorModelMeta } from '../../../ml/door/model-types.js'
import { DoorPredictor } from '../../../ml/door/predictor.js'
import { byAngle, calibratedModel, rpiFrames, slice, windowsOf } from '../../fixtures/door-model.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const trained = await calibratedModel()

test('predictions: one per window, probabilities, a state consistent with the closed head', async () => {
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    const windows = windowsOf(trained.meta, slice(100, 130).frames)
    assert.equal(windows.length, 30 * 7 - (trained.meta.window - 1), 'one run of 210 frames: a window per frame once full')
    const predictions = predictor.predict(windows)
    assert.equal(predictions.length, windows.length)
    for (const p of predictions) {
      assert.equal(p.angleProbabilities.length, 7)
      assert.ok(Math.abs(p.angleProbabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5)
      assert.ok(p.closedProbability >= 0 && p.closedProbability <= 1)
      assert.equal(p.state, p.closedProbability >= 0.5 ? 'closed' : 'open')
      assert.equal(p.angle === 0, p.state === 'closed')
      assert.ok(trained.meta.labels.includes(p.angle))
      assert.ok(p.confidence >= 0.5 && p.confidence <= 1)
      assert.equal(p.novel, p.novelty > 1)
    }
    assert.deepEqual(predictor.predict([]), [])
    assert.throws(() => predictor.predict([new Float32Array(10)]), /expected 206 window features/)
  } finally {
    predictor.dispose()
  }
})

test('the meta through JSON and the artifacts copied load into a predictor with identical answers', async () => {
  const original = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  const meta = JSON.parse(JSON.stringify(trained.meta)) as DoorModelMeta
  const artifacts = { ...trained.artifacts, weightData: (trained.artifacts.weightData as ArrayBuffer).slice(0) }
  const loaded = await DoorPredictor.load(tf, artifacts, meta)
  try {
    const windows = windowsOf(meta, slice(200, 215).frames)
    assert.deepEqual(loaded.predict(windows), original.predict(windows))
    await assert.rejects(DoorPredictor.load(tf, artifacts, { ...meta, format: 'other' as DoorModelMeta['format'] }), /not a door window model/)
  } finally {
    original.dispose()
    loaded.dispose()
  }
})

test('novelty: later windows of session A mostly familiar, another recording and permuted subcarriers novel', async () => {
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    // each angle's frames 100–200, recorded right after the calibration slice, each its own stream
    const later = [...byAngle.values()].map((rows) => rows.slice(100, 200))
    const own = windowNovelty(predictor, later)
    const share = (scores: number[]): number => scores.filter((s) => s > 1).length / scores.length
    assert.ok(share(own.scores) < 0.4, `${(share(own.scores) * 100).toFixed(0)} % of session A's later windows flagged novel`)
    const rpi = windowNovelty(predictor, [rpiFrames])
    assert.ok(share(rpi.scores) > 0.95, `only ${(share(rpi.scores) * 100).toFixed(0)} % of rpi-raw-frames windows novel`)
    assert.ok(rpi.recalibrated > 0.8 * rpi.scores.length, 'a device streaming the other recording needs recalibration')
    const permuted = windowNovelty(predictor, later.map((rows) => permuteSubcarriers(rows)))
    assert.ok(share(permuted.scores) > 0.95, `only ${(share(permuted.scores) * 100).toFixed(0)} % of permuted windows novel`)
  } finally {
    predictor.dispose()
  }
})
