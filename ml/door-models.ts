/**
 * Each door's own model: trained in the worker on that door's calibration
 * only, judged on the held-out end of each calibrated angle, activated for
 * that door only when it passes the floor. A swap for one door never pauses
 * another's, nor the global model. One door calibration trains at a time
 * (the machine has few cores); a second is refused with a retry hint.
 */
import { EventEmitter } from 'node:events'
import type { ServiceLog } from '../core/logger.js'
import { CalibrationBusyError, CalibrationRefusedError, GateRefusedError, NotFoundError, UnavailableError } from '../core/errors.js'
import type { ModelVersionInfo } from '../schemas/model.js'
import type { ChosenBackend } from './backend.js'
import { calibrationProblems, calibrationVerdict, closedOrAjarAngles, verdictOf, type CalibrationGate, type CalibrationVerdict } from './door/calibration.js'
import type { DoorEvaluation } from './door/evaluation.js'
import { DoorPredictor } from './door/predictor.js'
import type { ModelStore } from './store/model-store.js'
import { launchTraining, TrainingRunError, type LaunchedTraining } from './training/orchestration.js'
import type { RunnerMode } from './training/runner.js'
import type { DoorTrainingRequest } from './training/worker.js'
import type { TrainedDoorModel } from './door/model-types.js'
import type { TrainingLease, TrainingLock } from './training-lock.js'

/** A door's active model, ready to predict. */
export interface ActiveDoorModel {
  version: string
  predictor: DoorPredictor
  /** Open angles this model cannot tell from closed (its calibration accepted ajar as closed): its `closed` reads `closedOrAjar`. */
  closedOrAjar: number[]
}

/** How a door's calibration ended. */
export interface CalibrationOutcome {
  device: number
  version: string
  /** It passed the gate and now answers for the door. */
  activated: boolean
  floor: number
  evaluation: DoorEvaluation | undefined
  /** The gate's verdict (absent when the run failed). */
  verdict?: CalibrationVerdict
  /** Why it was not activated (or why the run failed); empty when activated. */
  reasons: string[]
  /** The run itself failed (or was stopped), as opposed to a model below the floor. */
  failed: boolean
  at: string
}

export interface DoorModelEvents {
  /** A door's model changed (activated, rolled back, or forgotten: version undefined). */
  changed: [{ device: number, version: string | undefined }]
  /** A calibration training started. */
  training: [{ device: number, version: string }]
  /** A calibration training ended. */
  calibrated: [CalibrationOutcome]
}

export interface DoorModelsOptions {
  store: ModelStore
  backend: ChosenBackend
  runnerMode: RunnerMode
  log: ServiceLog
  /** Options for every door training (tests use fewer epochs). */
  training?: DoorTrainingRequest
}

/** The verdict the worker recorded in the meta, or (a worker that did not) the gate applied here. */
function verdictFor (model: TrainedDoorModel, gate: CalibrationGate): CalibrationVerdict {
  return verdictOf(model.meta) ?? calibrationVerdict(model.meta.evaluation as DoorEvaluation | undefined, gate)
}

/** Seconds a refused second calibration is told to wait. */
const CALIBRATION_RETRY_AFTER_S = 10

export class DoorModels extends EventEmitter<DoorModelEvents> {
  readonly #options: DoorModelsOptions
  readonly #active = new Map<number, ActiveDoorModel>()
  #running: { device: number, launched: LaunchedTraining<TrainedDoorModel>, done: Promise<void> } | undefined
  #closed = false
  #trainingLock: TrainingLock | null = null
  /** The door whose lease is being taken, or whose run is being recorded and launched: a second start meanwhile is as busy as one that trains. */
  #starting: number | undefined
  /** That start, until its run is launched (or failed to): close waits for it. */
  #launching: Promise<void> | undefined

  private constructor (options: DoorModelsOptions) {
    super()
    this.#options = options
  }

  /** Loads each door's active version; a door whose version cannot load falls back to the global model (logged). */
  static async open (options: DoorModelsOptions): Promise<DoorModels> {
    const models = new DoorModels(options)
    for (const [device, version] of await options.store.activeDoorVersions()) {
      try {
        const predictor = await models.#load(version)
        models.#active.set(device, { version, predictor, closedOrAjar: closedOrAjarAngles(predictor.meta) })
      } catch (err) {
        options.log.error({ err, device, version }, 'could not load a door\'s model; the door uses the global model')
      }
    }
    return models
  }

  /** The door's own model, if it has one. */
  get (device: number): ActiveDoorModel | undefined {
    return this.#active.get(device)
  }

  /** The doors that have a model of their own. */
  devices (): number[] {
    return [...this.#active.keys()]
  }

  /** The door whose calibration is training, if one is. */
  get trainingDevice (): number | undefined {
    return this.#running?.device
  }

  /** The version a door's calibration is training, if one is. */
  training (device: number): string | undefined {
    return this.#running?.device === device ? this.#running.launched.version : undefined
  }

  /**
   * Trains the door's model on its calibration frames (recording order) in
   * the worker; resolves once launched (after the training lock, when one is
   * set, gave the door's scope). The outcome comes as a `calibrated` event.
   * @throws CalibrationRefusedError (400) with the reasons when the frames cannot make a model;
   *   CalibrationBusyError (409, retryAfterSeconds) while a calibration trains, here or (with a lock) on another instance
   */
  async start (device: number, frames: readonly Float32Array[], angles: readonly number[], gate: CalibrationGate, frameRate = 0): Promise<{ version: string }> {
    this.#assertCanStart(device)
    const reasons = calibrationProblems({ angles }, frameRate)
    if (reasons.length > 0) throw Object.assign(new CalibrationRefusedError(reasons.join(' ')), { reasons })

    let lease: TrainingLease | undefined
    if (this.#trainingLock !== null) {
      this.#starting = device
      try {
        lease = await this.#trainingLock({ kind: 'door', device })
      } finally {
        this.#starting = undefined
      }
      try {
        this.#assertCanStart(device)
      } catch (err) {
        await lease.release()
        throw err
      }
    }
    this.#starting = device
    const launching = this.#launch(device, frames, angles, gate, lease)
    this.#launching = launching.then(() => {}, () => {})
    try {
      return await launching
    } finally {
      this.#starting = undefined
      this.#launching = undefined
    }
  }

  /** The part of {@link start} past the lease: records and launches the run, and sets it running. */
  async #launch (
    device: number, frames: readonly Float32Array[], angles: readonly number[], gate: CalibrationGate, lease: TrainingLease | undefined
  ): Promise<{ version: string }> {
    let launched: LaunchedTraining<TrainedDoorModel>
    try {
      launched = await launchTraining(
        { store: this.#options.store, backend: this.#options.backend, runnerMode: this.#options.runnerMode },
        { model: 'door', device, set: { kind: 'csi', features: frames, angles }, options: this.#options.training, gate },
        {
          onProgress: (progress) => lease?.update({ progress }),
          accept: async (written, model) => {
            if (verdictFor(model, gate).activate) await this.#swapIn(device, written.version)
          }
        }
      )
    } catch (err) {
      await lease?.release()
      throw err
    }
    lease?.update({ version: launched.version })
    const running = { device, launched, done: Promise.resolve() }
    running.done = this.#settle(running, gate).finally(() => lease?.release())
    this.#running = running
    this.#options.log.info({ device, version: launched.version, frames: frames.length }, 'door calibration training started')
    this.emit('training', { device, version: launched.version })
    return { version: launched.version }
  }

  /** Sets the lock each calibration's training takes before it starts (see ModelService.setTrainingLock). */
  setTrainingLock (lock: TrainingLock | null): void {
    this.#trainingLock = lock
  }

  #assertCanStart (device: number): void {
    if (this.#closed) throw new UnavailableError('the model handler is shutting down')
    const busy = this.#running?.device ?? this.#starting
    if (busy === undefined) return
    const err = new CalibrationBusyError(busy === device
      ? `door ${device}'s calibration is training already${this.#running ? ` (version ${this.#running.launched.version})` : ''}`
      : `door ${busy}'s calibration is training; one door trains at a time`)
    Object.assign(err, { retryAfterSeconds: CALIBRATION_RETRY_AFTER_S })
    throw err
  }

  /** Resolves when the running calibration (if any) has ended. */
  async waitForTraining (): Promise<void> {
    await this.#running?.done
  }

  /**
   * Makes a stored door version the active one of its door (roll back or
   * forward). A version its calibration gate refused needs `force`: the
   * answer says `forced` and the log warns.
   * @throws NotFoundError for a version that is not a door's; GateRefusedError (409) for a refused one without force
   */
  async activate (version: string, options: { force?: boolean } = {}): Promise<ModelVersionInfo & { forced?: true }> {
    const info = await this.#options.store.info(version)
    if (info?.device === undefined) throw new NotFoundError(`no door model version ${JSON.stringify(version)}`)
    const refused = info.gate?.passed === false
    if (refused && !options.force) {
      const meta = await this.#options.store.doorMeta(version)
      const reasons = meta ? verdictOf(meta)?.reasons ?? [] : []
      const firstReason = reasons.length ? `: ${reasons[0]}` : ''
      throw new GateRefusedError(`door model version ${version} was refused by its calibration gate${firstReason} Activate it anyway with force: true.`)
    }
    await this.#swapIn(info.device, version, refused)
    const activated = await this.#options.store.info(version) as ModelVersionInfo
    return refused ? { ...activated, forced: true } : activated
  }

  /** The door forgets its model and uses the global one again (its versions stay listed). */
  async deactivate (device: number): Promise<void> {
    await this.#options.store.deactivateDoor(device)
    const previous = this.#active.get(device)
    this.#active.delete(device)
    previous?.predictor.dispose()
    if (previous) this.emit('changed', { device, version: undefined })
  }

  /** Stops a running calibration (recorded as interrupted) and frees the predictors. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // a calibration being launched is stopped like one that trains
    await this.#launching
    const running = this.#running
    if (running) {
      await running.launched.stop()
      await running.done
    }
    for (const { predictor } of this.#active.values()) predictor.dispose()
    this.#active.clear()
    this.removeAllListeners()
  }

  async #load (version: string): Promise<DoorPredictor> {
    const loaded = await this.#options.store.load(version)
    const meta = await this.#options.store.doorMeta(version)
    if (!meta) throw new Error(`version ${version} is not a door model`)
    return DoorPredictor.load(this.#options.backend.tf, loaded.artifacts, meta)
  }

  /** Loads a version and swaps it in for its door; the door's previous predictor is disposed. */
  async #swapIn (device: number, version: string, forced = false): Promise<void> {
    const predictor = await this.#load(version)
    await this.#options.store.activate(version)
    const previous = this.#active.get(device)
    this.#active.set(device, { version, predictor, closedOrAjar: closedOrAjarAngles(predictor.meta) })
    previous?.predictor.dispose()
    if (forced) this.#options.log.warn({ device, version, forced }, 'door model activated by force although its calibration gate refused it')
    else this.#options.log.info({ device, version }, 'door model activated')
    this.emit('changed', { device, version })
  }

  async #settle (running: { device: number, launched: LaunchedTraining<TrainedDoorModel> }, gate: CalibrationGate): Promise<void> {
    const { device, launched } = running
    const floor = gate.floor
    let outcome: CalibrationOutcome
    try {
      const { model } = await launched.outcome
      const evaluation = model.meta.evaluation as DoorEvaluation | undefined
      const verdict = verdictFor(model, gate)
      outcome = {
        device,
        version: launched.version,
        activated: verdict.activate,
        floor,
        evaluation,
        verdict,
        reasons: verdict.reasons,
        failed: false,
        at: new Date().toISOString()
      }
    } catch (err) {
      const message = err instanceof TrainingRunError ? err.message : String(err)
      outcome = {
        device,
        version: launched.version,
        activated: false,
        floor,
        evaluation: undefined,
        reasons: [`The door's model could not be trained: ${message}.`],
        failed: true,
        at: new Date().toISOString()
      }
      this.#options.log.warn({ device, version: launched.version, err }, 'door calibration training failed')
    } finally {
      if (this.#running?.launched === launched) this.#running = undefined
    }
    this.#options.log.info({
      device,
      version: outcome.version,
      activated: outcome.activated,
      balancedAccuracy: outcome.verdict?.balancedAccuracy,
      selfCheck: outcome.evaluation?.selfCheck?.passed
    }, 'door calibration ended')
    this.emit('calibrated', outcome)
  }
}
