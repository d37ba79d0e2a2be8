import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram } from 'prom-client'
import type { ClassifiedFrames } from '../../schemas/inference.js'
import type { Prediction, PredictionBatch } from '../../schemas/model.js'
import { MicroBatcher, gathers, type BatchShare } from './micro-batcher.js'
import { inferenceRoutes } from './routes.js'

/** The most recent prediction of the process (legacy GET /ml/get/inference_results). */
export interface LatestPrediction {
  prediction: Prediction
  version: string
  labels: number[]
  device: number | undefined
  at: number
}

/** A device's frames classify() answered, with the device they came from. */
export interface ClassifiedDeviceFrames extends ClassifiedFrames {
  device: number
  /** The frames answered (the array `taken` reported). */
  frames: readonly Float32Array[]
}

/**
 * What the inference area reports of the frames it classifies for a device
 * (the doors area listens: the door states are its): `taken` once the queue
 * took them in (before any answer), `classified` with their answers.
 */
export interface InferenceEvents {
  taken: [device: number, frames: readonly Float32Array[]]
  classified: [classified: ClassifiedDeviceFrames]
}

/** `fastify.inference`: classification through the micro-batcher, and the latest prediction. */
export interface InferenceService {
  /**
   * Classifies frames (106 features each) together with other callers'
   * frames and updates the latest prediction; a device's frames are reported
   * (`taken`, then `classified`). The frames must not change until the promise settles.
   * @throws OverloadedError (503, synchronously) when the queue is full
   * @returns rejects with NoModelError (503) while no model is active
   */
  classify (frames: readonly Float32Array[], device?: number): Promise<ClassifiedFrames>
  /**
   * Classifies frames through the micro-batcher only: no latest prediction,
   * nothing reported (the doors area's own feed of frames).
   * @throws OverloadedError (503, synchronously) when the queue is full
   * @returns rejects with NoModelError (503) while no model is active
   */
  submit (frames: readonly Float32Array[]): Promise<BatchShare<PredictionBatch>>
  readonly latest: LatestPrediction | undefined
  on<K extends keyof InferenceEvents> (event: K, listener: (...args: InferenceEvents[K]) => void): void
  off<K extends keyof InferenceEvents> (event: K, listener: (...args: InferenceEvents[K]) => void): void
}

declare module 'fastify' {
  interface FastifyInstance {
    inference: InferenceService
  }
}

/**
 * The inference area: decorates `fastify.inference` (micro-batcher over
 * `fastify.model.predict`, the legacy latest prediction) and serves the /ml
 * classification routes; the door states its answers move are the doors
 * area's (plugins/doors). On close queued frames are answered and every timer stops.
 */
export default fp(async (app) => {
  const { config } = app
  const batchFrames = new Histogram({
    name: 'doorsense_inference_batch_frames',
    help: 'frames per model call made by the micro-batcher',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    registers: [app.metrics]
  })
  const batchSeconds = new Histogram({
    name: 'doorsense_inference_batch_seconds',
    help: 'time of one model call made by the micro-batcher',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [app.metrics]
  })
  const framesClassified = new Counter({ name: 'doorsense_inference_frames_total', help: 'frames classified', registers: [app.metrics] })

  // read app.model at call time: the model area owns the decorator and its swaps
  const batcher = new MicroBatcher<PredictionBatch>((frames) => app.model.predict(frames), {
    gather: gathers(config.INFER_GATHER, app.model.backend.backend),
    maxBatch: config.INFER_MAX_BATCH,
    maxWaitMs: config.INFER_MAX_WAIT_MS,
    maxQueue: config.INFER_MAX_QUEUE,
    onBatch (frames, seconds) {
      batchFrames.observe(frames)
      batchSeconds.observe(seconds)
      framesClassified.inc(frames)
    }
  })
  // read when scraped, so the hot path pays nothing for it
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_inference_queue_frames',
    help: 'frames waiting for the model',
    registers: [app.metrics],
    collect () { this.set(batcher.pending) }
  })

  let latest: LatestPrediction | undefined
  const events = new EventEmitter<InferenceEvents>()

  const service: InferenceService = {
    classify (frames, device) {
      // submit first: a full queue answers 503 before the door state took anything in (the client retries)
      const pending = batcher.submit(frames)
      if (device !== undefined) events.emit('taken', device, frames)
      return pending.then(({ batch, predictions }) => {
        const at = Date.now()
        latest = { prediction: predictions[predictions.length - 1], version: batch.version, labels: batch.labels, device, at }
        const classified = { version: batch.version, labels: batch.labels, predictions, device, at }
        if (device !== undefined) events.emit('classified', { ...classified, device, frames })
        return classified
      })
    },
    submit: (frames) => batcher.submit(frames),
    on (event, listener) { events.on(event, listener as never) },
    off (event, listener) { events.off(event, listener as never) },
    get latest () { return latest }
  }
  app.decorate('inference', service)

  app.addHook('onClose', async () => {
    batcher.close()
    events.removeAllListeners()
  })

  await app.register(inferenceRoutes)
}, { name: 'inference', fastify: '5.x', dependencies: ['model', 'training'] })
