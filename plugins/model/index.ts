import fp from 'fastify-plugin'
import type { EventEmitter } from 'node:events'
import type {
  BackendInfo, ModelKind, ModelVersionInfo, Prediction, TrainingFailure,
  TrainingOptions, TrainingProgress, TrainingState
} from '../../schemas/model.js'

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
   * Starts a training run off the event loop; resolves when it has started
   * (state TRAINING_IN_PROGRESS), not when it ends.
   * @throws TrainingBusyError (409) while one runs; BadRequestError (400) on too few samples or labels
   */
  startTraining (set: TrainingSet, options?: TrainingOptions): Promise<{ version: string }>
  /** Resolves when the running training (if any) has ended. */
  waitForTraining (): Promise<void>
  /** Makes a stored version the active one (roll back or forward). */
  activate (version: string): Promise<ModelVersionInfo>
  versions (): ModelVersionInfo[]
  /** Folder of a stored version (for downloads); undefined if unknown. */
  versionDir (version: string): string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    model: ModelService
  }
}

/** The model area (to be built): decorates `fastify.model`. */
export default fp(async () => {}, { name: 'model', fastify: '5.x' })
