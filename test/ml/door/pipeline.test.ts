import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { DoorPipeline } from '../../../ml/door/pipeline.js'
import { DoorPredictor, type DoorWindowPrediction } from '../../../ml/door/predictor.js'
import { byAngle, calibratedModel, rpiFrames } from '../../fixtures/door-model.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const trained = await calibratedModel()

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
