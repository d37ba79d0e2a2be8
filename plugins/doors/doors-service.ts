/**
 * The door as a user sees it: every device doorsense knows (a Pi that sent a
 * keep-alive or frames) is a door, with its live state, its model and its
 * calibration. Calibration: captures label the door's next frames with an
 * angle; finish trains the door's own model on those frames only (ml/door-models.ts),
 * which takes over the door if it passes the floor. Takes a device's frames
 * into its live state (observe, through the DoorFeed). The one announcement
 * point of the doors: at the end of each event-loop turn it emits `state`
 * with each change of a live door state that turn (in order), then `door`
 * with the whole Door of each door that moved; `removed` when a door is
 * removed. Knows nothing of HTTP.
 */
import { EventEmitter } from 'node:events'
import { ConflictError, NotFoundError } from '../../core/errors.js'
import { CALIBRATION_FRAMES_PER_ANGLE, calibrationProblemsOfCounts, DEFAULT_AJAR_ANGLE, MAX_AJAR_ANGLE, verdictOf } from '../../ml/door/calibration.js'
import { AJAR_CLOSED_LIMIT } from '../../ml/door/self-check.js'
import type { CalibrationOutcome, DoorModels } from '../../ml/door-models.js'
import type { SampleStore } from '../../ml/store/sample-store.js'
import type { CalibrationResult, CaptureRequest, Door, DoorCalibration, DoorReason, FinishAccepted, FinishRequest } from '../../schemas/doors.js'
import type { ModelVersionInfo } from '../../schemas/model.js'
import type { CaptureStatus } from '../../schemas/training.js'
import type { DoorSnapshot, DoorStates } from './door-states.js'

/** What the service reads of the Pi registry (`fastify.devices`). */
export interface DeviceSource {
  knownIds (): Iterable<number>
  isKnown (id: number): boolean
  isLive (id: number): boolean
  nameOf (id: number): string
  rename (id: number, displayName: string | null): boolean
  forget (id: number): boolean
  on (event: 'live', listener: (device: { id: number }) => void): unknown
  on (event: 'stale' | 'known' | 'renamed', listener: (id: number) => void): unknown
}

/** Where a device's frames go to move its live state (DoorFeed). */
export interface FrameSink {
  observe (device: number, frames: readonly Float32Array[]): void
}

/** What the service uses of the capture sessions (`fastify.captures`). */
export interface CaptureSource {
  start (device: number, angle: number, seconds: number, options?: { frames?: number, source?: 'calibration' }): Promise<CaptureStatus>
  cancel (device: number): Promise<CaptureStatus | undefined>
  status (device: number): CaptureStatus | undefined
  on (event: 'changed', listener: (status: CaptureStatus) => void): unknown
}

export interface DoorsServiceOptions {
  /** The live door states. */
  states: DoorStates
  feed: FrameSink
  captures: CaptureSource
  samples: SampleStore
  doorModels: DoorModels
  /** The global model's active version, read when a door is shown. */
  globalModel: () => ModelVersionInfo | undefined
  /** Open/closed balanced accuracy a door's model must reach to take over (DOOR_CALIBRATION_FLOOR). */
  floor: number
  /** Seconds a capture runs when the request names none. */
  defaultCaptureSeconds?: number
  /** How often doors whose frame rate or last frame moved are re-announced, ms. */
  refreshMs?: number
}

/** The samples a door's calibration consists of. */
const CALIBRATION = { source: 'calibration' } as const

/** What every door's calibration must hold, as the API shows it. */
const CALIBRATION_PROTOCOL = Object.freeze({
  framesPerPosition: CALIBRATION_FRAMES_PER_ANGLE,
  defaultAjarAngle: DEFAULT_AJAR_ANGLE,
  maxAjarAngle: MAX_AJAR_ANGLE,
  openAngle: 90,
  ajarClosedLimit: AJAR_CLOSED_LIMIT
})

/** A door's last calibration outcome; `beforeTraining` when finish refused it for what was recorded (the protocol). */
type Outcome = CalibrationOutcome & { beforeTraining?: true }

export class DoorsService extends EventEmitter<{ state: [DoorSnapshot], door: [Door], removed: [number] }> {
  readonly #options: DoorsServiceOptions
  /** The Pi registry, once attached (the ingest of frames comes between the door states and the registry). */
  #registry: DeviceSource | undefined
  /** The last calibration outcome of each door (this process's; after a restart it is read from the active version). */
  readonly #outcomes = new Map<number, Outcome>()
  /** Calibration frames per angle of each door (none: no entry), read at start, after a delete, and when a capture of that door moves. */
  readonly #captured = new Map<number, Record<string, number>>()
  /** Per door, bumped by each count read or write of it: a read that finishes after a newer one is dropped. */
  readonly #countsOf = new Map<number, number>()
  /** Bumped by each read of every door's counts. */
  #countsOfAll = 0
  /** What each door's last `door` event said of its frames, to re-announce only doors that moved. */
  readonly #announced = new Map<number, string>()
  #ticker: NodeJS.Timeout | undefined
  /** Doors that moved this event-loop turn, announced at its end (setImmediate). */
  readonly #moved = new Set<number>()
  /** Changes of the live door states this turn, announced (as `state`) at its end with the moved doors. */
  readonly #changes: DoorSnapshot[] = []
  #announcing: NodeJS.Immediate | undefined
  /** A door not heard from since start has been in its state (unknown) since then. */
  readonly #startedAt = new Date().toISOString()

  constructor (options: DoorsServiceOptions) {
    super()
    this.#options = options
    const announce = (device: number) => this.#announce(device)
    options.states.on('change', (door) => {
      this.#changes.push(door)
      announce(door.device)
    })
    options.captures.on('changed', (status) => {
      this.#countCalibration(status.ID)
      announce(status.ID)
    })
    // a delete of samples anywhere (delete_samples, a cancelled capture, a door's own; in a cluster, on any instance) counts them all again
    options.samples.on('deleted', () => { this.#countCalibrations() })
    options.doorModels.on('training', ({ device }) => announce(device))
    options.doorModels.on('changed', ({ device }) => announce(device))
    options.doorModels.on('calibrated', (outcome) => {
      this.#outcomes.set(outcome.device, outcome)
      announce(outcome.device)
    })
  }

  /** The live door states (what /ml/get/door_state lists). */
  get states (): DoorStates {
    return this.#options.states
  }

  /**
   * Takes a device's frames (106 features each, stored by the caller) into its
   * door state: its own model reads them at once, or they queue for the global model.
   * @throws OverloadedError (503, synchronously) when the queue is full, before anything was taken in
   */
  observe (device: number, frames: readonly Float32Array[]): void {
    this.#options.feed.observe(device, frames)
  }

  /** Attaches the Pi registry (`fastify.devices`): every Pi it knows is a door. Once. */
  attach (devices: DeviceSource): void {
    if (this.#registry) throw new Error('the Pi registry is attached already')
    this.#registry = devices
    const announce = (device: number) => this.#announce(device)
    devices.on('live', (device) => announce(device.id))
    devices.on('stale', announce)
    devices.on('known', announce)
    // a new name reaches the doors stream and Home Assistant's device name
    devices.on('renamed', announce)
  }

  get #devices (): DeviceSource {
    if (!this.#registry) throw new Error('the doors have no Pi registry yet: attach() it first')
    return this.#registry
  }

  /**
   * Re-announces doors whose frame rate or last frame moved, at most once per
   * refresh: only those that sent frames lately, so idle doors cost nothing.
   */
  start (): void {
    if (this.#ticker) return
    this.#ticker = setInterval(() => {
      for (const id of this.#options.states.recentlyFramed()) {
        // a door that moved this turn is announced at its end: once, not here too
        if (this.#moved.has(id)) continue
        const door = this.get(id)
        if (door && this.#announced.get(id) !== frameKey(door)) this.#emit(door)
      }
    }, this.#options.refreshMs ?? 1000)
    this.#ticker.unref()
  }

  stop (): void {
    if (this.#ticker) clearInterval(this.#ticker)
    if (this.#announcing) clearImmediate(this.#announcing)
    this.#ticker = undefined
    this.#announcing = undefined
    this.#moved.clear()
    this.#changes.length = 0
    this.removeAllListeners()
  }

  /**
   * The doors by device ID: all, or a page of `limit` after device `after`.
   * @returns the doors, and the `after` of the next page (null at the end)
   */
  list (page?: { limit?: number, after?: number }): Door[]
  list (page: { limit?: number, after?: number }, withNext: true): { doors: Door[], next: number | null }
  list (page: { limit?: number, after?: number } = {}, withNext = false): Door[] | { doors: Door[], next: number | null } {
    const after = page.after ?? -1
    const ids = this.#ids().filter((id) => id > after)
    const shown = page.limit === undefined ? ids : ids.slice(0, page.limit)
    const doors = shown.map((id) => this.#view(id))
    if (!withNext) return doors
    return { doors, next: shown.length < ids.length ? shown[shown.length - 1] : null }
  }

  /** One door, or undefined for a device doorsense does not know. */
  get (id: number): Door | undefined {
    return this.#knows(id) ? this.#view(id) : undefined
  }

  /**
   * Labels the door's next frames with `angle` until `frames` are stored or
   * `seconds` pass. @throws NotFoundError, ConflictError (a capture or a training runs for this door)
   */
  async capture (id: number, request: CaptureRequest): Promise<Door> {
    this.#require(id)
    const training = this.#options.doorModels.training(id)
    if (training) throw new ConflictError(`door ${id}'s calibration is training (version ${training}); capture again once it has finished`)
    const seconds = request.seconds ?? this.#options.defaultCaptureSeconds ?? 30
    await this.#options.captures.start(id, request.angle, seconds, { frames: request.frames, source: 'calibration' })
    return this.#view(id)
  }

  /** Ends the door's capture now; the frames it stored stay. @throws NotFoundError, ConflictError when none runs */
  async cancelCapture (id: number): Promise<Door> {
    this.#require(id)
    if (!await this.#options.captures.cancel(id)) throw new ConflictError(`no capture is running for door ${id}`)
    return this.#view(id)
  }

  /**
   * Trains the door's own model on its calibration frames (recording order),
   * gated by the ajar self-check (unless `acceptAjarAsClosed`) and the floor.
   * @throws NotFoundError; ConflictError while a capture runs; CalibrationRefusedError (400, the reasons) when
   *   the calibration is not enough; CalibrationBusyError (409 + Retry-After) while a calibration trains
   */
  async finish (id: number, request: FinishRequest = {}): Promise<FinishAccepted> {
    this.#require(id)
    if (this.#options.captures.status(id)?.active) throw new ConflictError(`door ${id} is still capturing: wait for the capture to end, or cancel it`)
    const set = await this.#options.samples.trainingSet('csi', { device: id, ...CALIBRATION })
    const frameRate = this.#options.states.get(id)?.frameRate ?? 0
    try {
      const gate = { floor: this.#options.floor, acceptAjarAsClosed: request.acceptAjarAsClosed ?? false }
      const { version } = await this.#options.doorModels.start(id, set.features, set.angles, gate, frameRate)
      this.#outcomes.delete(id)
      return { device: id, version, status: 'training' }
    } catch (err) {
      // a refusal is the door's latest calibration result: show it on the door until what it asks for is captured
      const reasons = (err as { reasons?: string[] }).reasons
      if (reasons) {
        this.#outcomes.set(id, {
          device: id,
          version: '',
          activated: false,
          floor: this.#options.floor,
          evaluation: undefined,
          reasons,
          failed: true,
          beforeTraining: true,
          at: new Date().toISOString()
        })
        this.#announce(id)
      }
      throw err
    }
  }

  /** The door forgets its model and its calibration frames and falls back to the global model. @throws NotFoundError, ConflictError while it trains */
  async forget (id: number): Promise<Door> {
    this.#require(id)
    const training = this.#options.doorModels.training(id)
    if (training) throw new ConflictError(`door ${id}'s calibration is training (version ${training}); try again once it has finished`)
    await this.#options.captures.cancel(id)
    await this.#options.samples.delete('csi', { device: id, ...CALIBRATION })
    this.#setCalibrationCounts(id, {})
    this.#outcomes.delete(id)
    await this.#options.doorModels.deactivate(id)
    const door = this.#view(id)
    this.#emit(door)
    return door
  }

  /**
   * Gives the door a name of its own (kept across keep-alives and restarts;
   * Home Assistant gets the new name), or with null its Pi's NAME again.
   */
  rename (id: number, name: string | null): Door {
    this.#require(id)
    if (!this.#devices.rename(id, name)) {
      throw new ConflictError(`door ${id} has no Pi yet (it is known only from its model): it can be renamed once its Pi sends a keep-alive or frames`)
    }
    return this.#view(id)
  }

  /** Removes the door altogether: its calibration, and the device from the registry (a Pi that posts again comes back). */
  async remove (id: number): Promise<void> {
    await this.forget(id)
    this.#devices.forget(id)
    this.#announced.delete(id)
    this.emit('removed', id)
  }

  #ids (): number[] {
    const ids = new Set(this.#devices.knownIds())
    for (const device of this.#options.doorModels.devices()) ids.add(device)
    return [...ids].sort((a, b) => a - b)
  }

  #knows (id: number): boolean {
    return this.#devices.isKnown(id) || this.#options.doorModels.get(id) !== undefined
  }

  #require (id: number): void {
    if (!this.#knows(id)) throw new NotFoundError(`no door ${id}: a door appears once its Pi sends a keep-alive or frames`)
  }

  /**
   * Announces the door at the end of this event-loop turn, once however often
   * it moved in the turn: the view (and the listeners: the /doors stream, Home
   * Assistant) are built outside the request whose frames moved it.
   */
  #announce (device: number): void {
    this.#moved.add(device)
    this.#announcing ??= setImmediate(this.#announceMoved)
  }

  readonly #announceMoved = (): void => {
    this.#announcing = undefined
    const moved = [...this.#moved]
    this.#moved.clear()
    const changes = this.#changes.splice(0)
    for (const change of changes) this.emit('state', change)
    // before the Pi registry is attached no door is known yet (the app is still being built)
    if (!this.#registry) return
    for (const device of moved) {
      if (this.#knows(device)) this.#emit(this.#view(device))
    }
  }

  #emit (door: Door): void {
    this.#announced.set(door.device, frameKey(door))
    this.emit('door', door)
  }

  #view (id: number): Door {
    const { states, doorModels } = this.#options
    const devices = this.#devices
    const live = states.get(id)
    const own = doorModels.get(id)
    const global = this.#options.globalModel()
    const model: Door['model'] = own ? { version: own.version, scope: 'door' } : global ? { version: global.version, scope: 'global' } : null
    // no model answers: whatever the smoother last held, the door is unknown
    const known = model !== null && live !== undefined
    const closedOrAjar = own?.closedOrAjar ?? []
    return {
      device: id,
      name: devices.nameOf(id),
      state: known ? live.state : 'unknown',
      reason: doorReason(model, known ? live.unfamiliarTo : null, closedOrAjar),
      angle: known ? live.angle : null,
      confidence: known ? live.confidence : 0,
      since: live?.since ?? this.#startedAt,
      lastFrameAt: live?.lastFrameAt ?? null,
      frameRate: live?.frameRate ?? 0,
      live: devices.isLive(id),
      needsRecalibration: known ? live.needsRecalibration : false,
      model,
      calibration: this.#calibration(id, live?.frameRate ?? 0)
    }
  }

  /**
   * Reads every door's calibration counts (one query), and again after any
   * delete of samples: what a door shows as captured comes from here, so a
   * list of 10,000 doors costs no query. Awaited once at start-up.
   */
  async loadCalibrationCounts (): Promise<void> {
    const generation = ++this.#countsOfAll
    const devicesBefore = new Map(this.#countsOf)
    const counts = new Map<number, Record<string, number>>()
    for (const { device, angle, count } of await this.#options.samples.countsByDeviceAndAngle('csi', CALIBRATION.source)) {
      const captured = counts.get(device) ?? {}
      captured[String(angle)] = count
      counts.set(device, captured)
    }
    if (generation !== this.#countsOfAll) return
    for (const device of new Set([...this.#captured.keys(), ...counts.keys()])) {
      // a door counted since this read began has a newer count than this one
      if (this.#countsOf.get(device) !== devicesBefore.get(device)) continue
      const captured = counts.get(device) ?? {}
      if (JSON.stringify(this.#captured.get(device) ?? {}) === JSON.stringify(captured)) continue
      this.#setCalibrationCounts(device, captured)
      this.#announce(device)
    }
  }

  #countCalibrations (): void {
    this.loadCalibrationCounts().catch(() => {})
  }

  /** Counts one door's calibration frames again (a capture moved), then shows the door. */
  #countCalibration (id: number): void {
    const generation = this.#bumpCounts(id)
    this.#options.samples.countsByAngle('csi', { device: id, ...CALIBRATION }).then((counts) => {
      if (generation !== this.#countsOf.get(id)) return
      this.#setCalibrationCounts(id, Object.fromEntries(counts.map(({ angle, count }) => [String(angle), count])))
      this.#announce(id)
    }, () => {})
  }

  #bumpCounts (id: number): number {
    const generation = (this.#countsOf.get(id) ?? 0) + 1
    this.#countsOf.set(id, generation)
    return generation
  }

  #setCalibrationCounts (id: number, captured: Record<string, number>): void {
    // a count read before this one must not overwrite it
    this.#bumpCounts(id)
    if (Object.keys(captured).length === 0) this.#captured.delete(id)
    else this.#captured.set(id, captured)
  }

  #calibration (id: number, frameRate: number): DoorCalibration {
    const { captures, doorModels } = this.#options
    const captured = this.#captured.get(id) ?? {}
    const status = captures.status(id)
    const capture = status?.active
      ? {
          angle: status.angle,
          framesStored: status.framesStored,
          framesWanted: status.framesWanted ?? null,
          secondsLeft: status.secondsLeft,
          endsAt: status.endsAt
        }
      : null
    let outcome = this.#outcomes.get(id)
    if (outcome?.beforeTraining) {
      // what a refused finish asked for, against what is captured now: a reason goes once its frames are there
      const reasons = calibrationProblemsOfCounts(new Map(Object.entries(captured).map(([angle, count]) => [Number(angle), count])), frameRate)
      outcome = reasons.length ? { ...outcome, reasons } : undefined
    }
    const own = doorModels.get(id)
    let state: DoorCalibration['status'] = 'idle'
    if (capture) state = 'capturing'
    else if (doorModels.training(id)) state = 'training'
    else if (outcome && !outcome.activated) state = 'failed'
    else if (own) state = 'ready'
    // the active version's own outcome (after a restart), and its figures when the last finish made none
    const active = own && (!outcome || !outcome.evaluation) ? activeOutcome(id, own.version, own.predictor.meta, this.#options.floor) : undefined
    return {
      status: state,
      protocol: CALIBRATION_PROTOCOL,
      captured: { ...captured },
      capture,
      reasons: (outcome ?? active)?.reasons ?? [],
      result: resultOf(outcome) ?? resultOf(active)
    }
  }
}

/** What a door's frames-only refresh compares. */
function frameKey (door: Door): string {
  return `${door.frameRate}|${door.lastFrameAt}|${door.live}`
}

/** The outcome a restarted server reads back from a door's active version. */
function activeOutcome (device: number, version: string, meta: { evaluation?: unknown, gate?: unknown }, floor: number): CalibrationOutcome | undefined {
  if (!meta.evaluation) return undefined
  const verdict = verdictOf(meta)
  return {
    device,
    version,
    activated: true,
    floor: verdict?.floor ?? floor,
    evaluation: meta.evaluation as CalibrationOutcome['evaluation'],
    verdict,
    reasons: verdict?.reasons ?? [],
    failed: false,
    at: ''
  }
}

function resultOf (outcome: CalibrationOutcome | undefined): CalibrationResult | null {
  const evaluation = outcome?.evaluation
  if (!outcome || !evaluation) return null
  const { doorState, selfCheck } = evaluation
  const verdict = outcome.verdict
  return {
    version: outcome.version,
    activated: outcome.activated,
    floor: outcome.floor,
    doorState: {
      accuracy: doorState.accuracy,
      openClosed: { accuracy: doorState.openClosed.accuracy, balancedAccuracy: doorState.openClosed.balancedAccuracy, closedF1: doorState.openClosed.closedF1 }
    },
    confusion: { actual: ['closed', 'open'], reported: ['closed', 'open', 'unknown'], counts: doorState.confusion ?? [] },
    perAngle: (doorState.perAngle ?? []).map((r) => ({ ...r })),
    selfCheck: selfCheck
      ? { ajarAngle: selfCheck.ajarAngle, limit: selfCheck.limit, passed: selfCheck.passed, checks: selfCheck.checks.map((c) => ({ ...c })) }
      : null,
    gate: verdict
      ? { balancedAccuracy: verdict.balancedAccuracy, closedOrAjar: [...verdict.closedOrAjar], acceptAjarAsClosed: verdict.acceptAjarAsClosed }
      : null,
    at: outcome.at || new Date(0).toISOString()
  }
}

function angleList (angles: readonly number[]): string {
  const words = angles.map((a) => `${a}°`)
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`
}

/** Why a door reads as it does, in words with what to do; null when nothing limits it. */
export function doorReason (model: Door['model'], unfamiliarTo: 'door' | 'global' | null, closedOrAjar: readonly number[]): DoorReason | null {
  if (model === null) {
    return { code: 'no-model', message: 'No model answers for this door yet: calibrate it (closed, ajar, fully open), or train the shared model.' }
  }
  if (unfamiliarTo === 'global') {
    return {
      code: 'not-calibrated',
      message: 'Not calibrated for this room: this door\'s frames are unlike anything the shared model learned, so it cannot say open or closed. ' +
        'Calibrate this door.'
    }
  }
  if (unfamiliarTo === 'door') {
    return {
      code: 'unfamiliar',
      message: 'This door\'s recent frames look unlike its calibration (did a board or the furniture move?): ' +
        'it reads unknown until they look familiar again. Calibrate it again if this lasts.'
    }
  }
  if (closedOrAjar.length) {
    return {
      code: 'closed-or-ajar',
      message: `This door's calibration cannot tell ajar from closed (${angleList(closedOrAjar)} may read closed) and was activated anyway: ` +
        '"closed" means closed or ajar. Move the receiver or the transmitter so that the door\'s edge crosses the line between the two boards ' +
        'as soon as it opens, then calibrate again.'
    }
  }
  return null
}
