import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram } from 'prom-client'
import { OTHER_DEVICES } from '../../core/metrics.js'
import type { ClassifiedFrames } from '../../schemas/inference.js'
import type { Prediction, PredictionBatch } from '../../schemas/model.js'
import { MicroBatcher, gathers } from './micro-batcher.js'
import { DoorStates } from './door-states.js'
import { DoorStateStream } from './door-state-stream.js'
import { inferenceRoutes } from './routes.js'

/** The most recent prediction of the process (legacy GET /ml/get/inference_results). */
export interface LatestPrediction {
  prediction: Prediction
  version: string
  labels: number[]
  device: number | undefined
  at: number
}

/** `fastify.inference`: classification through the micro-batcher, and the door states it feeds. */
export interface InferenceService {
  /**
   * Classifies frames (106 features each) together with other callers'
   * frames, updates the sending device's door state and the latest
   * prediction. The frames must not change until the promise settles.
   * @throws OverloadedError (503, synchronously) when the queue is full
   * @returns rejects with NoModelError (503) while no model is active
   */
  classify (frames: readonly Float32Array[], device?: number): Promise<ClassifiedFrames>
  /**
   * Feeds a device's frames (106 features each, stored by the caller) to its
   * door state only: the door's own model reads them at once; without one
   * they queue for the global model. Nothing is answered per frame.
   * @throws OverloadedError (503, synchronously) when the queue is full, before anything was taken in
   */
  observe (device: number, frames: readonly Float32Array[]): void
  /** Per-device door states. */
  readonly doors: DoorStates
  readonly latest: LatestPrediction | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    inference: InferenceService
  }
}

/**
 * The inference area: decorates `fastify.inference` (micro-batcher over
 * `fastify.model.predict`, door states) and serves the /ml routes. On close:
 * open event streams end first (before the server waits for its
 * connections), then queued frames are answered and every timer stops.
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

  const doors = new DoorStates({ window: config.DOOR_WINDOW, hold: config.DOOR_HOLD, staleAfterS: config.STALE_AFTER_S })
  doors.start()
  const stream = new DoorStateStream(doors)
  new Gauge({ // eslint-disable-line no-new
    name: 'doorsense_door_needs_recalibration',
    help: '1 while a door\'s recent frames look unlike its calibration (its state is unknown then); device="other": how many of the doors past METRICS_MAX_DEVICES',
    labelNames: ['device'] as const,
    registers: [app.metrics],
    collect () {
      this.reset()
      // the doors past METRICS_MAX_DEVICES count together
      let others: number | undefined
      for (const door of doors.list()) {
        const device = app.deviceLabels.of(door.device)
        if (device === OTHER_DEVICES) others = (others ?? 0) + (door.needsRecalibration ? 1 : 0)
        else this.set({ device }, door.needsRecalibration ? 1 : 0)
      }
      if (others !== undefined) this.set({ device: OTHER_DEVICES }, others)
    }
  })
  let latest: LatestPrediction | undefined

  /** A door with a model of its own reads its frames through it, whatever route they came by. */
  const ownModelReads = (device: number | undefined, frames: readonly Float32Array[]): boolean => {
    if (device === undefined) return false
    const at = Date.now()
    doors.noteFrames(device, frames.length, at)
    const own = app.model.doorModels.get(device)
    if (own) doors.observeWindows(device, frames, own, at)
    else doors.observeNovelty(device, frames, app.model.novelty, at)
    return own !== undefined
  }
  app.model.doorModels.on('changed', ({ device, version }) => { if (version === undefined) doors.forgetModel(device) })

  const service: InferenceService = {
    classify (frames, device) {
      // submit first: a full queue answers 503 before the door state took anything in (the client retries)
      const pending = batcher.submit(frames)
      const read = ownModelReads(device, frames)
      return pending.then(({ batch, predictions }) => {
        const at = Date.now()
        latest = { prediction: predictions[predictions.length - 1], version: batch.version, labels: batch.labels, device, at }
        if (device !== undefined && !read) doors.observe(device, predictions, batch.labels, at, batch.version)
        return { version: batch.version, labels: batch.labels, predictions, device, at }
      })
    },
    observe (device, frames) {
      if (app.model.doorModels.get(device)) {
        ownModelReads(device, frames)
        return
      }
      const pending = batcher.submit(frames)
      ownModelReads(device, frames)
      // no answer is owed: without a global model the door stays unknown
      pending.then(({ batch, predictions }) => { doors.observe(device, predictions, batch.labels, Date.now(), batch.version) }, () => {})
    },
    doors,
    get latest () { return latest }
  }
  app.decorate('inference', service)

  app.addHook('preClose', async () => stream.closeAll())
  app.addHook('onClose', async () => {
    batcher.close()
    doors.stop()
    stream.closeAll()
  })

  await app.register(inferenceRoutes, { stream })
}, { name: 'inference', fastify: '5.x', dependencies: ['model', 'training'] })
