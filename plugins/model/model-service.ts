/**
 * The model handler behind `fastify.model` (and the CLI's `train`): the state
 * machine, the training run in its worker, the version store and the
 * predictor of the active version. Knows nothing of HTTP.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Storage } from '../../core/storage.js'
import { BadFrameError, BadRequestError, NoModelError, NotFoundError, TrainingBusyError, UnavailableError } from '../../core/errors.js'
import type {
  BackendInfo, Evaluation, ModelKind, ModelVersionInfo, TrainingFailure, TrainingOptions, TrainingProgress, TrainingState
} from '../../schemas/model.js'
import type { ChosenBackend } from './backend.js'
import { TrainingFsm, type TrainingEvent } from './fsm.js'
import type { ModelService, PredictionBatch, TrainingSet } from './index.js'
import { ModelStore, type RecoveryReport } from './model-store.js'
import { Predictor } from './predictor.js'
import { MIN_LABELS, MIN_ROWS_PER_LABEL, resolveTrainingOptions, type ModelMeta } from './trainer.js'
import { startTrainingRun, TrainingStoppedError, type RunnerMode, type TrainingRun } from './training-runner.js'

/** Version of the model handler (legacy /debug/get/version/tf_model_handler). */
export const HANDLER_VERSION = '2.0.0'

/** Values per row of each model kind. */
export const ROW_WIDTH: Readonly<Record<ModelKind, number>> = Object.freeze({ csi: 106, rssi: 1 })

/** What the handler logs through (pino and Fastify's logger fit). */
export interface HandlerLog {
  debug: (object: object, message: string) => void
  info: (object: object, message: string) => void
  warn: (object: object, message: string) => void
  error: (object: object, message: string) => void
}

export interface ModelHandlerOptions {
  storage: Storage
  dataDir: string
  backend: ChosenBackend
  log: HandlerLog
  /** Where runs execute; default: a worker thread for the pure-JS backend, a child process for a native one. */
  runnerMode?: RunnerMode
}

/** The active CSI version, ready to predict. */
interface ActivePredictor {
  version: string
  predictor: Predictor
}

interface CurrentRun {
  version: string
  kind: ModelKind
  run: TrainingRun
  /** Settles (never rejects) when the run has ended and its outcome is recorded. */
  done: Promise<void>
}

/** The model handler. Open it with {@link ModelHandler.open}; close it with {@link ModelHandler.close}. */
export class ModelHandler extends EventEmitter implements ModelService {
  readonly handlerVersion = HANDLER_VERSION
  readonly store: ModelStore
  /** What start-up found on disk (temp folders removed, versions adopted or ignored). */
  readonly recovery: RecoveryReport
  readonly #backend: ChosenBackend
  readonly #log: HandlerLog
  readonly #runnerMode: RunnerMode
  readonly #fsm: TrainingFsm
  #predictor: ActivePredictor | undefined
  #current: CurrentRun | undefined
  #progress: TrainingProgress | undefined
  #lastFailure: TrainingFailure | undefined
  #lastTrainingSeconds: number | undefined
  #activating = false
  #closed = false

  private constructor (options: ModelHandlerOptions, store: ModelStore, recovery: RecoveryReport, predictor: ActivePredictor | undefined) {
    super()
    this.store = store
    this.recovery = recovery
    this.#backend = options.backend
    this.#log = options.log
    this.#runnerMode = options.runnerMode ?? (options.backend.native ? 'process' : 'thread')
    this.#predictor = predictor
    const anyActive = predictor !== undefined || store.activeVersion('rssi') !== undefined
    this.#fsm = new TrainingFsm(anyActive ? 'FINISHED_TRAINING' : 'MODEL_DOESNT_EXIST')
    this.#lastFailure = store.lastFailure()
    this.#lastTrainingSeconds = store.lastTrainingSeconds()
  }

  /**
   * Opens the store (cleaning up after a crash) and loads the active CSI
   * version, if a good one exists.
   */
  static async open (options: ModelHandlerOptions): Promise<ModelHandler> {
    const store = new ModelStore(options.storage, options.dataDir)
    const recovery = store.recover()
    const { log } = options
    if (recovery.removedTemp.length) log.warn({ folders: recovery.removedTemp }, 'removed model folders left half-written by an interrupted write')
    if (recovery.adopted.length) log.warn({ versions: recovery.adopted }, 'listed complete model versions written just before a crash (not activated)')
    for (const broken of recovery.broken) log.warn(broken, 'ignoring an unusable model version')
    for (const fallback of recovery.fellBack) log.warn(fallback, 'the active model version is unusable: fell back to the last good one')
    for (const failure of recovery.interrupted) log.warn(failure, 'a training was interrupted by a crash')

    let predictor: ActivePredictor | undefined
    const active = store.activeVersion('csi')
    if (active !== undefined) {
      try {
        const loaded = await store.load(active)
        predictor = { version: active, predictor: await Predictor.load(options.backend.tf, loaded.artifacts, loaded.meta) }
        log.info({ version: active }, 'loaded the active model version')
      } catch (err) {
        log.error({ err, version: active }, 'could not load the active model version; no model is active')
      }
    }
    return new ModelHandler(options, store, recovery, predictor)
  }

  get state (): TrainingState {
    return this.#fsm.state
  }

  get backend (): BackendInfo {
    return this.#backend.info
  }

  get active (): ModelVersionInfo | undefined {
    return this.#predictor && this.store.info(this.#predictor.version)
  }

  get progress (): TrainingProgress | undefined {
    return this.#progress
  }

  get lastFailure (): TrainingFailure | undefined {
    return this.#lastFailure
  }

  get lastTrainingSeconds (): number | undefined {
    return this.#lastTrainingSeconds
  }

  predict (frames: ReadonlyArray<Float32Array | number[]>): PredictionBatch {
    // read once: a swap between calls must not mix versions within one
    const active = this.#predictor
    if (!active) throw new NoModelError('no model is active yet: train one with POST /training/post/train')
    const width = ROW_WIDTH.csi
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].length !== width) throw new BadFrameError(`frame ${i} must hold ${width} features, got ${frames[i].length}`)
    }
    const predictions = frames.length ? active.predictor.predict(frames) : []
    return { version: active.version, labels: active.predictor.meta.labels, predictions }
  }

  async startTraining (set: TrainingSet, options: TrainingOptions = {}): Promise<{ version: string }> {
    if (this.#closed) throw new UnavailableError('the model handler is shutting down')
    this.#assertIdle()
    let resolved: ModelMeta['options']
    try {
      resolved = resolveTrainingOptions({ ...options, kind: set.kind })
    } catch (err) {
      throw new BadRequestError((err as Error).message)
    }
    checkTrainingSet(set)

    const version = this.store.newVersionName(set.kind)
    this.#fire('start')
    const runId = this.store.beginTraining(version, set.kind)
    const requestedAt = performance.now()
    let startedAt = requestedAt
    this.#setProgress({ state: this.state, version, epoch: 0, epochs: resolved.epochs, elapsedSeconds: 0 })

    const width = ROW_WIDTH[set.kind]
    const features = new Float32Array(set.features.length * width)
    set.features.forEach((row, i) => features.set(row, i * width))
    const run = startTrainingRun(
      { backend: this.#backend.name, kind: set.kind, width, features, angles: [...set.angles], options: resolved },
      this.#runnerMode,
      {
        onStarted: () => {
          startedAt = performance.now()
          this.#fire('run')
          this.#setProgress({ ...this.#progress!, state: this.state })
        },
        onEpoch: (report) => {
          const elapsedSeconds = (performance.now() - startedAt) / 1000
          const progress: TrainingProgress = {
            state: this.state,
            version,
            epoch: report.epoch,
            epochs: report.epochs,
            loss: report.loss,
            accuracy: report.accuracy,
            elapsedSeconds,
            etaSeconds: report.epoch > 0 ? elapsedSeconds / report.epoch * Math.max(0, report.epochs - report.epoch) : undefined
          }
          if (report.validationAccuracy !== undefined) progress.validationAccuracy = report.validationAccuracy
          if (progress.etaSeconds === undefined) delete progress.etaSeconds
          this.#setProgress(progress)
        }
      }
    )
    const current: CurrentRun = { version, kind: set.kind, run, done: Promise.resolve() }
    current.done = this.#settle(current, runId, requestedAt)
    this.#current = current
    this.#log.info({ version, kind: set.kind, rows: set.features.length, mode: this.#runnerMode, options: resolved }, 'training started')
    // not awaiting run.started: loading tfjs in the worker takes seconds, and the
    // caller (a 202) only needs the run launched; a failed start ends in TRAINING_FAILED
    return { version }
  }

  waitForTraining (): Promise<void> {
    return this.#current?.done ?? Promise.resolve()
  }

  async activate (version: string): Promise<ModelVersionInfo> {
    this.#assertIdle()
    const info = this.store.info(version)
    if (!info) throw new NotFoundError(`no model version ${JSON.stringify(version)} (GET /training/get/models lists them)`)
    this.#activating = true
    try {
      await this.#swapIn(version)
      const activated = this.store.activate(version)
      this.#fire('activate')
      this.#log.info({ version }, 'model version activated')
      this.emit('activated', activated)
      return activated
    } finally {
      this.#activating = false
    }
  }

  versions (): ModelVersionInfo[] {
    return this.store.list()
  }

  versionDir (version: string): string | undefined {
    return this.store.versionDir(version)
  }

  /** The blocked hold-out evaluation of a version (default: the active CSI one). */
  evaluation (version?: string): { version: string, evaluation: Evaluation } | undefined {
    const name = version ?? this.#predictor?.version
    const evaluation = name === undefined ? undefined : this.store.meta(name)?.evaluation
    return name !== undefined && evaluation ? { version: name, evaluation } : undefined
  }

  /** Stops a running training (recorded as interrupted) and frees the predictor. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const current = this.#current
    if (current) {
      await current.run.stop()
      await current.done
    }
    this.#predictor?.predictor.dispose()
    this.#predictor = undefined
    this.removeAllListeners()
  }

  #assertIdle (): void {
    if (this.#fsm.training) {
      throw new TrainingBusyError(`a training is in progress (version ${this.#current?.version}, state ${this.state}); wait until GET /training/get/training_status says it ended`)
    }
    if (this.#activating) throw new TrainingBusyError('a model version is being activated; try again in a moment')
  }

  #fire (event: TrainingEvent): void {
    const before = this.state
    const after = this.#fsm.fire(event)
    if (after !== before) this.emit('state', after)
  }

  #setProgress (progress: TrainingProgress): void {
    this.#progress = progress
    this.emit('progress', progress)
  }

  /** Loads a stored version's predictor (CSI) and swaps it in; the old one is disposed. */
  async #swapIn (version: string): Promise<void> {
    const loaded = await this.store.load(version)
    if (loaded.meta.kind !== 'csi') return
    const predictor = await Predictor.load(this.#backend.tf, loaded.artifacts, loaded.meta)
    const previous = this.#predictor
    this.#predictor = { version, predictor }
    previous?.predictor.dispose()
  }

  /** Waits for the run's outcome and records it: a new active version, or a failure. */
  async #settle (current: CurrentRun, runId: number, requestedAt: number): Promise<void> {
    const { version } = current
    const seconds = () => (performance.now() - requestedAt) / 1000
    try {
      const model = await current.run.result
      await this.store.write(version, model)
      await this.#swapIn(version)
      const activated = this.store.activate(version)
      const took = seconds()
      this.store.endTraining(runId, 'finished', took)
      this.#lastTrainingSeconds = took
      this.#fire('finish')
      this.#setProgress({ ...this.#progress!, state: this.state, elapsedSeconds: took, etaSeconds: 0 })
      this.#log.info({ version, seconds: took, accuracy: model.meta.evaluation?.accuracy }, 'training finished; new version active')
      this.emit('activated', activated)
    } catch (err) {
      const stopped = err instanceof TrainingStoppedError
      const message = stopped ? (err as Error).message : `training of ${version} failed: ${(err as Error).message}`
      const failure: TrainingFailure = { at: new Date().toISOString(), message, version }
      this.#lastFailure = failure
      try {
        this.store.endTraining(runId, stopped ? 'interrupted' : 'failed', seconds(), message)
      } catch (recordErr) {
        this.#log.error({ err: recordErr, version }, 'could not record the training outcome')
      }
      if (this.#fsm.can('fail')) this.#fire('fail')
      if (this.#progress) this.#setProgress({ ...this.#progress, state: this.state })
      if (stopped) this.#log.warn(failure, 'training stopped')
      else this.#log.error({ ...failure, err }, 'training failed')
    } finally {
      if (this.#current === current) this.#current = undefined
    }
  }
}

/**
 * Rejects a set the trainer cannot learn from, with a message an admin can act on.
 * @throws BadRequestError
 */
export function checkTrainingSet (set: TrainingSet): void {
  const width = ROW_WIDTH[set.kind]
  if (set.features.length !== set.angles.length) {
    throw new BadRequestError(`training set has ${set.features.length} rows but ${set.angles.length} angles`)
  }
  const counts = new Map<number, number>()
  for (let i = 0; i < set.features.length; i++) {
    if (set.features[i].length !== width) throw new BadRequestError(`row ${i} holds ${set.features[i].length} values, a ${set.kind} model reads ${width}`)
    counts.set(set.angles[i], (counts.get(set.angles[i]) ?? 0) + 1)
  }
  if (counts.size < MIN_LABELS) {
    const have = counts.size === 0 ? 'no samples' : `only ${[...counts.keys()].map((angle) => `${angle}°`).join(', ')}`
    throw new BadRequestError(`training needs samples of at least ${MIN_LABELS} door angles; the ${set.kind} dataset has ${have}`)
  }
  const scarce = [...counts].filter(([, count]) => count < MIN_ROWS_PER_LABEL).sort((a, b) => a[0] - b[0])
  if (scarce.length) {
    throw new BadRequestError(`training needs at least ${MIN_ROWS_PER_LABEL} samples per door angle; too few for ${scarce.map(([angle, count]) => `${angle}° (${count})`).join(', ')} (add samples of that angle, or remove a stray label with POST /training/post/delete_samples)`)
  }
}
