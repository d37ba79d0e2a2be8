import fp from 'fastify-plugin'
import type { EventEmitter } from 'node:events'
import { Counter, Gauge } from 'prom-client'
import type {
  BackendInfo, Evaluation, ModelKind, ModelVersionInfo, Prediction, TrainingFailure,
  TrainingOptions, TrainingProgress, TrainingState
} from '../../schemas/model.js'
import { chooseBackend } from './backend.js'
import { ModelHandler } from './model-service.js'

/** The answers to one predict() call, from one model version. */
export interface PredictionBatch {
  /** The model version that answered. */
  version: string
  /** The angles the probabilities refer to, in order. */
  labels: number[]
  predictions: Prediction[]
}

/** Labelled rows handed to a training run (rows in insertion order). */
export interface TrainingSet {
  kind: ModelKind
  /** One row per sample: 106 CSI features, or 1 RSSI value. */
  features: Float32Array[]
  /** The door angle of each row, in degrees. */
  angles: number[]
}

/**
 * `fastify.model`: the one model handler of the process. Events:
 * `state` (TrainingState), `progress` (TrainingProgress), `activated` (ModelVersionInfo).
 */
export interface ModelService extends EventEmitter {
  readonly state: TrainingState
  readonly backend: BackendInfo
  /** Version of the model handler code (legacy /debug/get/version/tf_model_handler). */
  readonly handlerVersion: string
  /** The active CSI model version, if any. */
  readonly active: ModelVersionInfo | undefined
  readonly progress: TrainingProgress | undefined
  readonly lastFailure: TrainingFailure | undefined
  /** Seconds the last finished training took (legacy /training/get/training_time). */
  readonly lastTrainingSeconds: number | undefined
  /**
   * Classifies CSI frames (106 features each) with the active model in one
   * tensor call. Synchronous, so a model swap can only happen between calls.
   * @throws NoModelError (503) when no model is active
   */
  predict (frames: ReadonlyArray<Float32Array | number[]>): PredictionBatch
  /**
   * Starts a training run off the event loop; resolves once the run is
   * launched (state START_TRAINING; TRAINING_IN_PROGRESS follows when the
   * worker has loaded), not when it ends. A worker that fails to start ends
   * in TRAINING_FAILED with `lastFailure` saying why.
   * @throws TrainingBusyError (409) while one runs; BadRequestError (400) on too few samples or labels
   */
  startTraining (set: TrainingSet, options?: TrainingOptions): Promise<{ version: string }>
  /** Resolves when the running training (if any) has ended. */
  waitForTraining (): Promise<void>
  /** Makes a stored version the active one (roll back or forward). */
  activate (version: string): Promise<ModelVersionInfo>
  /** Stored usable versions (CSI and RSSI), newest first. */
  versions (): ModelVersionInfo[]
  /** Folder of a stored version (for downloads); undefined if unknown. */
  versionDir (version: string): string | undefined
  /** The blocked hold-out evaluation of a version (default: the active CSI one); undefined if none. */
  evaluation (version?: string): { version: string, evaluation: Evaluation } | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    model: ModelService
  }
}

/**
 * The model area: picks the TensorFlow.js backend (TF_BACKEND), opens the
 * version store (cleaning up after a crash), loads the active version and
 * decorates `fastify.model`. Closing the app stops a running training.
 */
export default fp(async (app) => {
  const log = app.log.child({ area: 'model' })
  const backend = await chooseBackend(app.config.TF_BACKEND, log)
  const handler = await ModelHandler.open({ storage: app.storage, dataDir: app.config.DATA_DIR, backend, log })
  app.decorate('model', handler)
  app.addHook('onClose', async () => handler.close())

  // metrics: how runs end, and the current state (for alerts on TRAINING_FAILED)
  const runs = new Counter({
    name: 'doorsense_training_runs_total',
    help: 'training runs by how they ended',
    labelNames: ['outcome'] as const,
    registers: [app.metrics]
  })
  const stateGauge = new Gauge({
    name: 'doorsense_model_state',
    help: '1 for the model handler\'s current state',
    labelNames: ['state'] as const,
    registers: [app.metrics]
  })
  let previous = handler.state
  const onState = (next: TrainingState) => {
    const wasTraining = previous === 'START_TRAINING' || previous === 'TRAINING_IN_PROGRESS'
    if (wasTraining && next === 'FINISHED_TRAINING') runs.inc({ outcome: 'finished' })
    if (wasTraining && next === 'TRAINING_FAILED') runs.inc({ outcome: 'failed' })
    stateGauge.reset()
    stateGauge.set({ state: next }, 1)
    previous = next
  }
  onState(handler.state)
  handler.on('state', onState)
}, { name: 'model', fastify: '5.x', dependencies: ['storage'] })
