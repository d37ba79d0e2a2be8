/**
 * One training run from launch to a written version: the run's row in the
 * training log, the worker, progress with an ETA, the durable write, and
 * the outcome recorded whatever happens. What becomes of the written version
 * (activate it, or gate it first) is the caller's `accept` step, so the
 * global model and a door's own model share this path.
 */
import { performance } from 'node:perf_hooks'
import type { ModelKind, ModelVersionInfo, TrainingProgress } from '../../schemas/model.js'
import type { ChosenBackend } from '../backend.js'
import type { ModelStore } from '../store/model-store.js'
import type { TrainedDoorModel } from '../door/model-types.js'
import type { CalibrationGate } from '../door/calibration.js'
import type { ModelMeta, StorableModel, TrainedModel } from '../model-types.js'
import type { DoorTrainingRequest } from './worker.js'
import { isStoredSamples, packTrainingSet, type StoredSamples, type TrainingSet } from '../training-set.js'
import { startTrainingRun, TrainingStoppedError, type RunnerMode } from './runner.js'

/** What a launch needs besides the set. */
export interface TrainingContext {
  store: ModelStore
  backend: ChosenBackend
  runnerMode: RunnerMode
}

/** What a run trains: the global per-frame model, or one door's windowed model on its calibration. */
export type TrainingTarget =
  | { model: 'frame', set: TrainingSet | StoredSamples, options: ModelMeta['options'] }
  | { model: 'door', device: number, set: TrainingSet, options?: DoorTrainingRequest, gate?: CalibrationGate }

/** The model a target's run produces. */
export type ModelOf<T extends TrainingTarget> = T extends { model: 'door' } ? TrainedDoorModel : TrainedModel

/** Callbacks of a launched run. */
export interface TrainingHandlers<M extends StorableModel> {
  /** The worker has loaded and begins its first epoch. */
  onStarted?: () => void
  /** Progress at launch, at the start and after each epoch; `state` is left for the caller to fill. */
  onProgress?: (progress: Omit<TrainingProgress, 'state'>) => void
  /**
   * Runs once the version is written, before the run counts as finished: a
   * throw here fails the run (recorded, and the version stays inactive).
   */
  accept: (written: ModelVersionInfo, model: M) => Promise<void> | void
}

/** How a run ended badly: stopped from outside, or failed. */
export class TrainingRunError extends Error {
  override name = 'TrainingRunError'
  constructor (message: string, readonly version: string, readonly stopped: boolean, options?: ErrorOptions) {
    super(message, options)
  }
}

/** A launched run. */
export interface LaunchedTraining<M extends StorableModel = TrainedModel> {
  readonly version: string
  readonly kind: ModelKind
  /** Resolves with the accepted version and the seconds it took; rejects with a {@link TrainingRunError} (already recorded). */
  readonly outcome: Promise<{ info: ModelVersionInfo, seconds: number, model: M }>
  /** Ends the worker now; `outcome` rejects as stopped. */
  stop: () => Promise<void>
}

/**
 * Launches a run of `target` under a fresh version name; resolves once the
 * run is recorded and its worker launched (not loaded). Validation of the
 * set and options is the caller's (it answers 400s before anything is recorded).
 * @throws when the run cannot be recorded (nothing was launched then)
 */
export async function launchTraining<T extends TrainingTarget> (
  context: TrainingContext,
  target: T,
  handlers: TrainingHandlers<ModelOf<T>>
): Promise<LaunchedTraining<ModelOf<T>>> {
  const { store } = context
  const { set } = target
  const device = target.model === 'door' ? target.device : undefined
  const version = await store.newVersionName(device === undefined ? set.kind : `door${device}`)
  const runId = await store.beginTraining(version, set.kind)
  const requestedAt = performance.now()
  let startedAt = requestedAt
  const seconds = () => (performance.now() - requestedAt) / 1000
  handlers.onProgress?.({ version, epoch: 0, epochs: target.model === 'frame' ? target.options.epochs : 0, elapsedSeconds: 0 })

  // stored samples are read by the run itself: only the database's name crosses over
  const rows = isStoredSamples(target.set) ? { source: { kind: target.set.kind, database: target.set.database } } : { set: packTrainingSet(target.set) }
  const job = target.model === 'door'
    ? { model: 'door' as const, backend: context.backend.name, set: packTrainingSet(target.set), options: target.options, gate: target.gate }
    : { model: 'frame' as const, backend: context.backend.name, ...rows, options: target.options }
  const run = startTrainingRun<ModelOf<T>>(job, context.runnerMode, {
    onStarted: () => {
      startedAt = performance.now()
      handlers.onStarted?.()
    },
    onEpoch: (report) => {
      const elapsedSeconds = (performance.now() - startedAt) / 1000
      const progress: Omit<TrainingProgress, 'state'> = {
        version,
        epoch: report.epoch,
        epochs: report.epochs,
        loss: report.loss,
        accuracy: report.accuracy,
        elapsedSeconds
      }
      if (report.epoch > 0) progress.etaSeconds = elapsedSeconds / report.epoch * Math.max(0, report.epochs - report.epoch)
      if (report.validationAccuracy !== undefined) progress.validationAccuracy = report.validationAccuracy
      handlers.onProgress?.(progress)
    }
  })

  const outcome = (async () => {
    try {
      const model = await run.result
      const info = await store.write(version, model, new Date(), device)
      await handlers.accept(info, model)
      const took = seconds()
      await store.endTraining(runId, 'finished', took)
      return { info: await store.info(version) ?? info, seconds: took, model }
    } catch (err) {
      const stopped = err instanceof TrainingStoppedError
      const message = stopped ? (err as Error).message : `training of ${version} failed: ${(err as Error).message}`
      try {
        await store.endTraining(runId, stopped ? 'interrupted' : 'failed', seconds(), message)
      } catch {
        // the outcome still reaches the caller; the log row is what start-up recovery repairs
      }
      throw new TrainingRunError(message, version, stopped, { cause: err })
    }
  })()
  // a caller that only calls stop() must not see an unhandled rejection
  outcome.catch(() => {})
  return { version, kind: set.kind, outcome, stop: run.stop }
}
