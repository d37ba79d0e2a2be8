import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { readFileSync } from 'node:fs'
import { parseFrame } from '../../../domain/frames.js'
import { readSessionCsv } from '../../../domain/session-csv.js'
import { permuteSubcarriers, windowNovelty } from '../../../ml/door/evaluation.js'
import { DoorPipeline, DoorPredictor, trainDoorModel, type DoorModelMeta, type DoorWindowPrediction, type TrainedDoorModel } from '../../../ml/door/train.js'

const SESSION_A = new URL('../../fixtures/csi/door-angles-session-a.csv', import.meta.url)
const RPI_RAW = new URL('../../fixtures/csi/rpi-raw-frames.txt', import.meta.url)

await tf.setBackend('cpu')
tf.enableProdMode()

/** Session A's frames per angle, in file order. */
const byAngle = new Map<number, Float32Array[]>()
for (const row of readSessionCsv(readFileSync(SESSION_A, 'utf8')).rows) {
  if (!byAngle.has(row.angle)) byAngle.set(row.angle, [])
  byAngle.get(row.angle)?.push(row.features)
}
const rpiFrames = readFileSync(RPI_RAW, 'utf8').split(/\r?\n/).filter((line) => line.trim() !== '').map((line) => parseFrame(line))

/** Frames [from, to) of each angle, angle by angle (a calibration-sized slice). */
function slice (from: number, to: number): { frames: Float32Array[], angles: number[] } {
  const frames: Float32Array[] = []
  const angles: number[] = []
  for (const [angle, rows] of byAngle) {
    for (const frame of rows.slice(from, to)) {
      frames.push(frame)
      angles.push(angle)
    }
  }
  return { frames, angles }
}

/** One ready window of one device, waiting in a micro-batch. */
interface PendingWindow {
  pipeline: DoorPipeline
  /** What pipeline.push returned. */
  features: Float32Array
  /** When its newest frame arrived. */
  at: number
}

/**
 * The micro-batcher's step: predicts a batch of windows from any number of
 * devices in one call and feeds each answer to its own device's hysteresis,
 * in the order given (keep each device's windows in arrival order).
 */
function predictPipelines (predictor: DoorPredictor, pending: readonly PendingWindow[]): DoorWindowPrediction[] {
  const predictions = predictor.predict(pending.map((item) => item.features))
  pending.forEach((item, i) => item.pipeline.observe(predictions[i], item.at))
  return predictions
}

/** Windows of a run of frames, as a device's pipeline makes them. */
function windowsOf (meta: DoorModelMeta, frames: readonly Float32Array[]): Float32Array[] {
  const pipeline = new DoorPipeline(meta)
  return frames.map((frame, i) => pipeline.push(frame, i)).filter((w): w is Float32Array => w !== undefined)
}

// a calibration-sized set: each angle's first 100 frames (~5 s at 20 frames/s)
const calibration = slice(0, 100)
let trained: TrainedDoorModel
let trainMs = 0

test('trains on 100 frames per angle in seconds, without leaking tensors', async () => {
  const before = tf.memory().numTensors
  const started = performance.now()
  trained = await trainDoorModel(tf, calibration, { seed: 3 })
  trainMs = performance.now() - started
  assert.equal(tf.memory().numTensors, before)
  assert.ok(trainMs < 20_000, `training took ${trainMs.toFixed(0)} ms`)
  const meta = trained.meta
  assert.deepEqual(meta.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(meta.inputSize, 206)
  assert.equal(meta.trainWindows, 7 * (100 - meta.window + 1))
  assert.ok(meta.novelty.rows <= 256 && meta.novelty.rows > 0)
  assert.ok(meta.novelty.threshold > 0)
})

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

test('pipelines of many devices: one batched predict equals per-device predicts; the first state after k − 1 + enter frames', async () => {
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    const meta = trained.meta
    const streams = [byAngle.get(0)?.slice(100, 140) ?? [], byAngle.get(60)?.slice(100, 140) ?? [], rpiFrames.slice(0, 40)]
    const batched = streams.map(() => new DoorPipeline(meta))
    const alone = streams.map(() => new DoorPipeline(meta))
    const firstState = streams.map(() => -1)
    for (let i = 0; i < 40; i++) {
      // the micro-batcher: every device's ready window of this tick in one predict call
      const pending = streams.flatMap((frames, d) => {
        const features = batched[d].push(frames[i], i)
        return features ? [{ pipeline: batched[d], features, at: i }] : []
      })
      if (pending.length) predictPipelines(predictor, pending)
      streams.forEach((frames, d) => {
        const features = alone[d].push(frames[i], i)
        if (features) alone[d].observe(predictor.predict([features])[0], i)
        assert.deepEqual(batched[d].door, alone[d].door)
        if (firstState[d] < 0 && batched[d].door.state !== 'unknown') firstState[d] = i + 1
      })
    }
    const latency = meta.window - 1 + meta.hysteresis.enter
    assert.equal(firstState[1], latency, 'the 60° stream reports with frame k − 1 + enter')
    assert.equal(batched[1].door.state, 'open')
    assert.equal(firstState[2], -1, 'the other recording never gets a state')
    assert.equal(batched[2].door.state, 'unknown')
    assert.equal(batched[2].door.needsRecalibration, meta.hysteresis.novelAfter <= 40 - meta.window + 1)
    // silence forgets the window
    assert.equal(batched[1].expire(1000, 30), true)
    assert.equal(batched[1].framesInWindow, 0)
  } finally {
    predictor.dispose()
  }
})

test('refuses a calibration without the closed door or with too few frames', async () => {
  const noClosed = { frames: calibration.frames.filter((_, i) => calibration.angles[i] !== 0), angles: calibration.angles.filter((a) => a !== 0) }
  await assert.rejects(trainDoorModel(tf, noClosed), /closed door \(0°\) and of at least one open angle/)
  const few = slice(0, 30)
  await assert.rejects(trainDoorModel(tf, few), /each angle needs at least 50 \(two windows of 25\), got 30 for 0°/)
  await assert.rejects(trainDoorModel(tf, calibration, { window: 1 }), /window must be an integer in 2\.\.256, got 1/)
})
