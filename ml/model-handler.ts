/**
 * The model handler behind `fastify.model` (and the CLI's `train`): the state
 * machine, the active version's predictor, activation, and the launch of
 * training runs (ml/training/orchestration.ts runs them). Knows nothing of
 * HTTP: its errors carry codes, and the routes add what to do about them.
 */
import { EventEmitter } from 'node:events'
import type { Postgres } from '../core/postgres.js'
import type { Storage } from '../core/storage.js'
import type { ServiceLog } from '../core/logger.js'
import { BadFrameError, BadRequestError, NoModelError, NotFoundError, TrainingBusyError, UnavailableError } from '../core/errors.js'
import type {
  BackendInfo, Evaluation, ModelVersionInfo, PredictionBatch, TrainingFailure, TrainingOptions, TrainingProgress, TrainingState
} from '../schemas/model.js'
import type { ChosenBackend } from './backend.js'
import { TrainingFsm, type TrainingEvent } from './training/fsm.js'
import { ModelStore, type RecoveryReport } from './store/model-store.js'
import { Predictor } from './global/predictor.js'
import { resolveTrainingOptions } from './global/trainer.js'
import { type ModelMeta } from './model-types.js'
import { launchTraining, TrainingRunError, type LaunchedTraining } from './training/orchestration.js'
import type { RunnerMode } from './training/runner.js'
import { checkStoredSamples, checkTrainingSet, isStoredSamples, ROW_WIDTH, rowsOf, type StoredSamples, type TrainingSet } from './training-set.js'
import { toEvaluation, type DoorEvaluation } from './door/evaluation.js'
import { DoorModels } from './door-models.js'
import type { DoorTrainingRequest } from './training/worker.js'
import type { WindowNoveltyModel } from './novelty.js'
import type { TrainingLease, TrainingLock } from './training-lock.js'
import type { VersionBundle } from './store/version-files.js'

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
  /** The active CSI model's window novelty, if it carries one: how a door without a model of its own tells it is in another room. */
  readonly novelty: { version: string, model: WindowNoveltyModel } | undefined
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
   * @throws TrainingBusyError (409) while one runs; BadRequestError or TooFewSamplesError (400) on a set it cannot learn from
   */
  startTraining (set: TrainingSet | StoredSamples, options?: TrainingOptions): Promise<{ version: string }>
  /** Resolves when the running training (if any) has ended. */
  waitForTraining (): Promise<void>
  /**
   * Makes a stored version the active one (roll back or forward). A door
   * version its calibration gate refused needs `force`.
   * @throws NotFoundError (404) for an unknown version; TrainingBusyError (409) while a run or
   *   another activation is under way; GateRefusedError (409) for a refused door version without force
   */
  activate (version: string, options?: { force?: boolean }): Promise<ModelVersionInfo>
  /** Stored usable versions (CSI and RSSI), newest first. */
  versions (): Promise<ModelVersionInfo[]>
  /**
   * Serves the version the database records as active when another process
   * on the same DATA_DIR changed it (or, on a cluster's PostgreSQL, another
   * instance, once this one has the version's folder), so that what this
   * server predicts with is what it lists and what a restart would load
   * (checked every {@link FOLLOW_CATALOGUE_MS}; await it before answering
   * with `active`). Never during a training or an activation of its own.
   * @returns settles once the swap (if one was needed) is done; never rejects
   */
  followCatalogue (): Promise<void>
  /** Folder of a stored version (for downloads); undefined if unknown. */
  versionDir (version: string): Promise<string | undefined>
  /** The blocked hold-out evaluation of a version (default: the active CSI one); undefined if none. */
  evaluation (version?: string): Promise<{ version: string, evaluation: Evaluation } | undefined>
  /** Each door's own model: calibration training, activation, fallback. */
  readonly doorModels: DoorModels
  /**
   * Sets the lock every training (global and door) takes before it starts
   * (the cluster's, one run per scope cluster-wide); null, the default, for none.
   */
  setTrainingLock (lock: TrainingLock | null): void
  /** A usable version's files (meta.json, model.json, weights), for another instance. @throws for an unknown version */
  exportVersion (version: string): Promise<VersionBundle>
  /**
   * Records a version another instance made, from its files: written as a
   * trained one is (crash-safe, listed), not active. @throws when the files are not whole or the name is taken
   */
  importVersion (version: string, bundle: VersionBundle): Promise<ModelVersionInfo>
}

/** Version of the model handler (legacy /debug/get/version/tf_model_handler). */
export const HANDLER_VERSION = '2.0.0'

/**
 * How often an idle handler checks whether another process on its DATA_DIR
 * activated a version (the CLI refuses to while a server runs, so this is a
 * safety net; a read of the versions checks at once).
 */
export const FOLLOW_CATALOGUE_MS = 5_000

export interface ModelHandlerOptions {
  storage: Storage
  dataDir: string
  /** PostgreSQL (`DATABASE_URL`): the versions' rows and the training log are the cluster's, there (see ModelStore.open); null or absent: SQLite. */
  postgres?: Postgres | null
  /** This instance, as the cluster's training log names its runs (PostgreSQL only; see ModelStoreOptions.instance). */
  instance?: string
  backend: ChosenBackend
  log: ServiceLog
  /** Where runs execute; default: a worker thread for the pure-JS backend, a child process for a native one. */
  runnerMode?: RunnerMode
  /** Options for every door calibration's training (tests use fewer epochs). */
  doorTraining?: DoorTrainingRequest
}

/** The active CSI version, ready to predict. */
interface ActivePredictor {
  version: string
  predictor: Predictor
  /** Its row, as read when it was swapped in and again once its activation is recorded. */
  info: ModelVersionInfo
}

/** What the store said at start, before the handler was built. */
interface StartState {
  recovery: RecoveryReport
  predictor: ActivePredictor | undefined
  /** The CSI version recorded active (usable), whether or not it loaded. */
  recordedActive: string | undefined
  anyRssiActive: boolean
  lastFailure: TrainingFailure | undefined
  lastTrainingSeconds: number | undefined
}

interface CurrentRun {
  launched: LaunchedTraining
  /** Settles (never rejects) when the run has ended and its outcome is recorded. */
  done: Promise<void>
}

/** The model handler. Open it with {@link ModelHandler.open}; close it with {@link ModelHandler.close}. */
export class ModelHandler extends EventEmitter implements ModelService {
  readonly handlerVersion = HANDLER_VERSION
  readonly store: ModelStore
  /** What start-up found on disk (temp folders removed, versions adopted or ignored). */
  readonly recovery: RecoveryReport
  readonly doorModels: DoorModels
  readonly #backend: ChosenBackend
  readonly #log: ServiceLog
  readonly #runnerMode: RunnerMode
  readonly #fsm: TrainingFsm
  #predictor: ActivePredictor | undefined
  #current: CurrentRun | undefined
  #progress: TrainingProgress | undefined
  #lastFailure: TrainingFailure | undefined
  #lastTrainingSeconds: number | undefined
  #activating = false
  #closed = false
  /** A start of a training past its lock, until its run is launched (or failed to): close waits for it. */
  #starting: Promise<void> | undefined
  #trainingLock: TrainingLock | null = null
  /** A load of the version another process activated, while one runs. */
  #following: Promise<void> | undefined
  /** The recorded active version that could not be loaded: not tried again until the record changes. */
  #unloadable: string | undefined
  readonly #followTimer: NodeJS.Timeout

  private constructor (options: ModelHandlerOptions, store: ModelStore, start: StartState, doorModels: DoorModels) {
    super()
    this.store = store
    this.doorModels = doorModels
    this.recovery = start.recovery
    this.#backend = options.backend
    this.#log = options.log
    this.#runnerMode = options.runnerMode ?? (options.backend.native ? 'process' : 'thread')
    this.#predictor = start.predictor
    const anyActive = start.predictor !== undefined || start.anyRssiActive
    this.#fsm = new TrainingFsm(anyActive ? 'FINISHED_TRAINING' : 'MODEL_DOESNT_EXIST')
    this.#lastFailure = start.lastFailure
    this.#lastTrainingSeconds = start.lastTrainingSeconds
    if (start.recordedActive !== start.predictor?.version) this.#unloadable = start.recordedActive
    this.#followTimer = setInterval(() => { this.followCatalogue().catch(() => {}) }, FOLLOW_CATALOGUE_MS).unref()
  }

  /**
   * Opens the store (cleaning up after a crash) and loads the active CSI
   * version, if a good one exists.
   */
  static async open (options: ModelHandlerOptions): Promise<ModelHandler> {
    const store = await ModelStore.open({ storage: options.storage, dataDir: options.dataDir, postgres: options.postgres, instance: options.instance })
    const recovery = await store.recover()
    const { log } = options
    if (recovery.removedTemp.length) log.warn({ folders: recovery.removedTemp }, 'removed model folders left half-written by an interrupted write')
    if (recovery.adopted.length) log.warn({ versions: recovery.adopted }, 'listed complete model versions written just before a crash (not activated)')
    for (const broken of recovery.broken) log.warn(broken, 'ignoring an unusable model version')
    for (const fallback of recovery.fellBack) log.warn(fallback, 'the active model version is unusable: fell back to the last good one')
    for (const failure of recovery.interrupted) log.warn(failure, 'a training was interrupted by a crash')
    if (recovery.seeded?.length) log.warn({ versions: recovery.seeded }, 'a new cluster\'s model catalogue: activated the versions this DATA_DIR had active')

    let predictor: ActivePredictor | undefined
    const active = await store.activeVersion('csi')
    if (active !== undefined) {
      try {
        const loaded = await store.load(active)
        const meta = await store.meta(active)
        if (!meta) throw new Error(`version ${active} is not a global model`)
        predictor = { version: active, predictor: await Predictor.load(options.backend.tf, loaded.artifacts, meta), info: loaded.info }
        log.info({ version: active }, 'loaded the active model version')
      } catch (err) {
        log.error({ err, version: active }, 'could not load the active model version; no model is active')
      }
    }
    const runnerMode = options.runnerMode ?? (options.backend.native ? 'process' : 'thread')
    const doorModels = await DoorModels.open({ store, backend: options.backend, runnerMode, log, training: options.doorTraining })
    return new ModelHandler(options, store, {
      recovery,
      predictor,
      recordedActive: active,
      anyRssiActive: await store.activeVersion('rssi') !== undefined,
      lastFailure: await store.lastFailure(),
      lastTrainingSeconds: await store.lastTrainingSeconds()
    }, doorModels)
  }

  get state (): TrainingState {
    return this.#fsm.state
  }

  get backend (): BackendInfo {
    return this.#backend.info
  }

  /**
   * The served version's row: as read when it was swapped in, updated when
   * its activation is recorded (it is not read again on every call: this
   * getter serves every door view).
   */
  get active (): ModelVersionInfo | undefined {
    return this.#predictor?.info
  }

  get novelty (): { version: string, model: WindowNoveltyModel } | undefined {
    const active = this.#predictor
    return active?.predictor.novelty && { version: active.version, model: active.predictor.novelty }
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
    if (!active) throw new NoModelError('no model is active yet')
    const width = ROW_WIDTH.csi
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].length !== width) throw new BadFrameError(`frame ${i} must hold ${width} features, got ${frames[i].length}`)
    }
    const predictions = frames.length ? active.predictor.predict(frames) : []
    return { version: active.version, labels: active.predictor.meta.labels, predictions }
  }

  async startTraining (set: TrainingSet | StoredSamples, options: TrainingOptions = {}): Promise<{ version: string }> {
    if (this.#closed) throw new UnavailableError('the model handler is shutting down')
    this.#assertIdle()
    let resolved: ModelMeta['options']
    try {
      resolved = resolveTrainingOptions({ ...options, kind: set.kind })
    } catch (err) {
      throw new BadRequestError((err as Error).message)
    }
    if (isStoredSamples(set)) checkStoredSamples(set)
    else checkTrainingSet(set)

    const lease = await this.#takeLock()
    if (this.#closed) {
      await lease?.release()
      throw new UnavailableError('the model handler is shutting down')
    }
    const starting = this.#launch(set, resolved, lease)
    this.#starting = starting.then(() => {}, () => {})
    try {
      return await starting
    } finally {
      this.#starting = undefined
    }
  }

  /** The part of {@link startTraining} past its lock: records and launches the run, and sets it current. */
  async #launch (set: TrainingSet | StoredSamples, resolved: ModelMeta['options'], lease: TrainingLease | undefined): Promise<{ version: string }> {
    this.#fire('start')
    let launched: LaunchedTraining
    try {
      launched = await launchTraining({ store: this.store, backend: this.#backend, runnerMode: this.#runnerMode }, { model: 'frame', set, options: resolved }, {
        onStarted: () => this.#fire('run'),
        onProgress: (progress) => {
          this.#setProgress({ ...progress, state: this.state })
          lease?.update({ progress: this.#progress })
        },
        accept: async (written, model) => {
          await this.#swapIn(written.version)
          this.#noteActivated(await this.store.activate(written.version))
          if (model.meta.kind === 'csi' && !model.meta.novelty) {
            this.#log.warn({ version: written.version, reason: model.meta.noveltyProblem },
              'the new global model carries no window novelty: a door without a calibration of its own will show its answers ' +
              'even in a room it never saw; train it on longer runs of each angle')
          }
        }
      })
    } catch (err) {
      // nothing was launched (the run could not even be recorded, e.g. storage full): the
      // request fails, and the machine must not stay in START_TRAINING, refusing every later one
      this.#lastFailure = { at: new Date().toISOString(), message: `training could not start: ${(err as Error).message}` }
      this.#fire('fail')
      await lease?.release()
      throw err
    }
    lease?.update({ version: launched.version })
    const current: CurrentRun = { launched, done: Promise.resolve() }
    // the lease is given back once the outcome is recorded (a new version active, or the failure)
    current.done = this.#settle(current).finally(() => lease?.release())
    this.#current = current
    this.#log.info({ version: launched.version, kind: set.kind, rows: rowsOf(set), mode: this.#runnerMode, options: resolved }, 'training started')
    // not awaiting the worker's start: loading tfjs in it takes seconds, and the
    // caller (a 202) only needs the run launched; a failed start ends in TRAINING_FAILED
    return { version: launched.version }
  }

  waitForTraining (): Promise<void> {
    return this.#current?.done ?? Promise.resolve()
  }

  async activate (version: string, options: { force?: boolean } = {}): Promise<ModelVersionInfo> {
    const info = await this.store.info(version)
    // a door's version swaps for that door alone: the global model's training does not hold it up
    if (info?.scope === 'door') return this.doorModels.activate(version, options)
    this.#assertIdle()
    if (!info) throw new NotFoundError(`no model version ${JSON.stringify(version)}`)
    this.#activating = true
    try {
      await this.#swapIn(version)
      const activated = await this.store.activate(version)
      this.#noteActivated(activated)
      this.#fire('activate')
      this.#log.info({ version }, 'model version activated')
      this.emit('activated', activated)
      return activated
    } finally {
      this.#activating = false
    }
  }

  versions (): Promise<ModelVersionInfo[]> {
    return this.store.list()
  }

  setTrainingLock (lock: TrainingLock | null): void {
    this.#trainingLock = lock
    this.doorModels.setTrainingLock(lock)
  }

  exportVersion (version: string): Promise<VersionBundle> {
    return this.store.exportVersion(version)
  }

  importVersion (version: string, bundle: VersionBundle): Promise<ModelVersionInfo> {
    return this.store.importVersion(version, bundle)
  }

  followCatalogue (): Promise<void> {
    if (this.#following) return this.#following
    if (this.#closed || this.#fsm.training || this.#activating) return Promise.resolve()
    this.#following = this.#follow().finally(() => { this.#following = undefined })
    return this.#following
  }

  /** {@link followCatalogue}'s look and, when the record moved, swap; never rejects. */
  async #follow (): Promise<void> {
    let recorded: string | undefined
    try {
      recorded = await this.store.activeVersion('csi')
    } catch (err) {
      // the database closing under a timer's check (app close) is no reason to crash
      this.#log.warn({ err }, 'could not read the active model version')
      return
    }
    if (recorded === undefined || recorded === this.#predictor?.version || recorded === this.#unloadable) return
    // a training or an activation of its own may have begun while the record was read
    if (this.#closed || this.#fsm.training || this.#activating) return
    this.#activating = true
    try {
      await this.#swapIn(recorded)
      if (this.#fsm.can('activate')) this.#fire('activate')
      this.#log.warn({ version: recorded }, this.store.shared
        ? 'another instance activated a model version in the cluster\'s catalogue; serving it now'
        : 'another process activated a model version on this DATA_DIR; serving it now')
      const info = await this.store.info(recorded)
      if (info) {
        this.#noteActivated(info)
        this.emit('activated', info)
      }
    } catch (err) {
      this.#unloadable = recorded
      this.#log.error({ err, version: recorded }, 'could not load the model version another process activated; keeping the one loaded')
    } finally {
      this.#activating = false
    }
  }

  versionDir (version: string): Promise<string | undefined> {
    return this.store.versionDir(version)
  }

  /** The blocked hold-out evaluation of a version (default: the active CSI one). */
  async evaluation (version?: string): Promise<{ version: string, evaluation: Evaluation } | undefined> {
    const name = version ?? this.#predictor?.version
    if (name === undefined) return undefined
    const doorEvaluation = (await this.store.doorMeta(name))?.evaluation as DoorEvaluation | undefined
    const evaluation = doorEvaluation ? toEvaluation(doorEvaluation) : (await this.store.meta(name))?.evaluation
    return evaluation ? { version: name, evaluation } : undefined
  }

  /** Stops a running training (recorded as interrupted) and frees the predictor. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#followTimer)
    await this.#following
    // a run being launched is stopped like one that runs
    await this.#starting
    const current = this.#current
    if (current) {
      await current.launched.stop()
      await current.done
    }
    await this.doorModels.close()
    this.#predictor?.predictor.dispose()
    this.#predictor = undefined
    this.removeAllListeners()
  }

  #assertIdle (): void {
    if (this.#fsm.training) {
      throw new TrainingBusyError(`a training is in progress (version ${this.#current?.launched.version}, state ${this.state})`)
    }
    if (this.#activating) throw new TrainingBusyError('a model version is being activated; try again in a moment')
  }

  /**
   * Takes the global scope's lease when a lock is set. The wait lets another
   * start of this process in: it is checked again, and the lease given back if it won.
   */
  async #takeLock (): Promise<TrainingLease | undefined> {
    if (this.#trainingLock === null) return undefined
    const lease = await this.#trainingLock({ kind: 'global' })
    try {
      if (this.#closed) throw new UnavailableError('the model handler is shutting down')
      this.#assertIdle()
    } catch (err) {
      await lease.release()
      throw err
    }
    return lease
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
    const meta = await this.store.meta(version)
    if (meta?.kind !== 'csi') return
    const predictor = await Predictor.load(this.#backend.tf, loaded.artifacts, meta)
    const previous = this.#predictor
    this.#predictor = { version, predictor, info: loaded.info }
    previous?.predictor.dispose()
  }

  /** A version's row as its activation left it: {@link active}'s, if it is the one served. */
  #noteActivated (info: ModelVersionInfo): void {
    if (this.#predictor?.version === info.version) this.#predictor.info = info
  }

  /** Waits for the run's outcome: a new active version, or a failure. */
  async #settle (current: CurrentRun): Promise<void> {
    const { version } = current.launched
    try {
      const { info, seconds, model } = await current.launched.outcome
      this.#noteActivated(info)
      this.#lastTrainingSeconds = seconds
      this.#fire('finish')
      this.#setProgress({ ...this.#progress!, state: this.state, elapsedSeconds: seconds, etaSeconds: 0 })
      this.#log.info({ version, seconds, accuracy: model.meta.evaluation?.accuracy }, 'training finished; new version active')
      this.emit('activated', info)
    } catch (err) {
      const failed = err instanceof TrainingRunError ? err : new TrainingRunError(String(err), version, false)
      const failure: TrainingFailure = { at: new Date().toISOString(), message: failed.message, version }
      this.#lastFailure = failure
      if (this.#fsm.can('fail')) this.#fire('fail')
      if (this.#progress) this.#setProgress({ ...this.#progress, state: this.state })
      if (failed.stopped) this.#log.warn(failure, 'training stopped')
      else this.#log.error({ ...failure, err: failed.cause ?? failed }, 'training failed')
    } finally {
      if (this.#current === current) this.#current = undefined
    }
  }
}
