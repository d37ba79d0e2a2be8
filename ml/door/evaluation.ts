/**
 * How well the windowed door-state engine does, measured exactly as the
 * server runs it: blocked split per angle (each angle's last `holdout` share
 * of rows in file order is its test tail), a model trained on the rest, then
 * each tail replayed through a fresh {@link DoorPipeline} (window → predictor
 * → hysteresis), as if it were a device that just came online.
 *
 * Figures:
 * - per window (= per frame once the window is full): 7-class accuracy of the
 *   window's angle and the open/closed figures of its state;
 * - `doorState`: the reported state at each frame from the pipeline's first
 *   reported state on (earlier frames are not counted; `latencyFrames` is
 *   the frame of a tail, 1-based, that first reports, worst over the tails);
 *   a frame reported `unknown` (novelty) counts as wrong;
 * - `novelty.auc`: how well the novelty score ranks windows of shifted
 *   recordings above the held-out windows of the training file.
 *
 * {@link toEvaluation} maps a {@link DoorEvaluation} onto the schema's
 * `Evaluation` (schemas/model.ts), so a door version's evaluation is served
 * like a global one's.
 */
import { DOOR_FRAME_WIDTH, FrameWindow, doorFrameFeaturesInto } from '../../domain/door-window.js'
import { openClosedFigures, rocAuc, type OpenClosedFigures } from '../../domain/door-metrics.js'
import { firstStateFrames, type HysteresisOptions } from '../../domain/door-hysteresis.js'
import { countedFrames, doorStateEvaluation, evaluate, type ReportedFrame } from '../../domain/evaluation.js'
import { SUBCARRIERS, DC_INDEX } from '../../domain/frames.js'
import { isClosed } from '../../domain/labels.js'
import { blockedSplit, tailSize } from '../../domain/split.js'
import type { Evaluation } from '../../schemas/model.js'
import type { Tf } from '../model-types.js'
import type { DoorTrainingInput, TrainedDoorModel } from './model-types.js'
import { minimumFramesPerAngle, trainDoorModel } from './train.js'
import { DoorPredictor, type DoorWindowPrediction } from './predictor.js'
import { DoorPipeline } from './pipeline.js'

/** Open/closed figures without the row count. */
export type OpenClosed = Omit<OpenClosedFigures, 'rows'>

/** A shifted recording: frames (106 values) in contiguous runs (each run is replayed as its own stream). */
export interface ShiftedSet {
  name: string
  runs: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>
}

/** The evaluation a door model carries in its meta. */
export interface DoorEvaluation {
  /** Per-window 7-class accuracy (the window's angle: 0 when the closed head says closed). */
  accuracy: number
  /** Per-window open/closed figures (the closed head's state). */
  openClosed: OpenClosed
  /** Per-window accuracy of the angle head alone (argmax over all angles). */
  angleHeadAccuracy: number
  /** Per-window figures of each calibrated angle (the window's angle, as `accuracy`), in the order of `labels`. */
  perClass: Evaluation['perClass']
  /** Per window: rows = true angle, columns = the window's angle, in the order of `labels`; sums to testWindows. */
  confusion: number[][]
  doorState: {
    /** 7-class accuracy of the reported angle (unknown counts as wrong). */
    accuracy: number
    openClosed: OpenClosed
    /** k. */
    window: number
    /** Worst over the tails: the frame (1-based) of a fresh stream that first reports a state (k − 1 + enter unless novelty delays it). */
    latencyFrames: number
    /** Frames counted (from each tail's first reported state on). */
    frames: number
    /** Counted frames reported unknown. */
    unknownFrames: number
    /** Counted frames: rows = true (closed, open), columns = reported (closed, open, unknown). */
    confusion: number[][]
    /** Counted frames of each calibrated angle by what was reported, ascending angles. */
    perAngle?: AngleReadings[]
  }
  /** The ajar self-check (ml/door/self-check.ts), when the calibration was checked. */
  selfCheck?: SelfCheck
  /** Share of the held-out windows (the door's own later frames) scored novel: false alarms of one window. */
  heldOutNovelShare?: number
  /** Present when shifted sets were given. */
  novelty?: {
    /** AUC over all shifted windows against the held-out windows. */
    auc: number
    /** Share of held-out windows scored novel (false alarms of one window). */
    heldOutNovelShare: number
    sets: Array<{ name: string, auc: number, windows: number, novelShare: number, recalibrationShare: number }>
  }
  labels: number[]
  holdout: number
  trainFrames: number
  testFrames: number
  testWindows: number
  /** As the schema's Evaluation: the frames the model was trained on (= trainFrames, the predictor's meta.trainFrames). */
  trainRows: number
  /** As the schema's Evaluation: the rows of `confusion` (= testWindows, one per test frame once its window is full). */
  testRows: number
  tails: number
  trainingSeconds: number
}

/** One angle's ajar self-check (ml/door/self-check.ts). */
export interface AjarCheck {
  /** The open angle replayed, degrees. */
  angle: number
  /** held-out: the model trained on every angle's inner part; left-out: a model trained without this angle. */
  model: 'held-out' | 'left-out'
  /** Frames counted (from the replay's first reported state on). */
  frames: number
  /** Share of them reported closed. */
  closedShare: number
  /** Share reported unknown (novel to the model). */
  unknownShare: number
  /** closedShare ≤ the limit. */
  passed: boolean
}

/** The ajar self-check's figures, carried by a calibration's evaluation. */
export interface SelfCheck {
  /** The smallest calibrated open angle: the ajar position. */
  ajarAngle: number
  /** Share of an angle's frames that may read closed. */
  limit: number
  /** Every check passed. */
  passed: boolean
  checks: AjarCheck[]
  /** Training and replay time of the left-out models. */
  seconds: number
}

/** How the frames of one true angle were reported (counts). */
export interface AngleReadings {
  angle: number
  frames: number
  closed: number
  open: number
  unknown: number
}

/** Counts of reported states per true angle, ascending angles. */
export function readingsByAngle (frames: readonly ReportedFrame[]): AngleReadings[] {
  const byAngle = new Map<number, AngleReadings>()
  for (const frame of frames) {
    let readings = byAngle.get(frame.angle)
    if (!readings) byAngle.set(frame.angle, readings = { angle: frame.angle, frames: 0, closed: 0, open: 0, unknown: 0 })
    readings.frames++
    readings[frame.state]++
  }
  return [...byAngle.values()].sort((a, b) => a.angle - b.angle)
}

/** The frames of one contiguous stretch of one angle. */
export interface Tail {
  angle: number
  frames: ReadonlyArray<ArrayLike<number>>
}

/** What replaying tails gave. */
export interface ReplayResult {
  /** Per window: true angle and the prediction. */
  windows: Array<{ angle: number, prediction: DoorWindowPrediction }>
  /** Per counted frame: true angle and the reported door. */
  frames: ReportedFrame[]
  latencyFrames: number
}

/**
 * Replays each tail through a fresh pipeline, frame by frame, as a server
 * would (one predict call per tail: the windows are batched, then fed to the
 * hysteresis in order, which is what a micro-batcher does).
 */
export function replayTails (predictor: DoorPredictor, tails: readonly Tail[], hysteresis: HysteresisOptions = predictor.meta.hysteresis): ReplayResult {
  const result: ReplayResult = { windows: [], frames: [], latencyFrames: 0 }
  const settings = { ...predictor.meta, hysteresis }
  const nominal = firstStateFrames(settings.window, hysteresis)
  for (const tail of tails) {
    const pipeline = new DoorPipeline(settings)
    const windows: Array<{ index: number, features: Float32Array }> = []
    tail.frames.forEach((frame, index) => {
      const features = pipeline.push(frame, index)
      if (features) windows.push({ index, features })
    })
    const predictions = predictor.predict(windows.map((w) => w.features))
    const states: Array<{ state: 'open' | 'closed' | 'unknown', angle: number | null }> = tail.frames.map(() => ({ state: 'unknown', angle: null }))
    predictions.forEach((prediction, i) => {
      const index = windows[i].index
      pipeline.observe(prediction, index)
      result.windows.push({ angle: tail.angle, prediction })
      const door = pipeline.door
      states[index] = { state: door.state, angle: door.angle }
    })
    // counted from the first reported state on; a tail that never reports from the nominal latency on (all wrong)
    const counted = countedFrames(tail.angle, states, nominal)
    result.latencyFrames = Math.max(result.latencyFrames, counted.from)
    result.frames.push(...counted.frames)
  }
  return result
}

/** Splits rows (indices in file order) into contiguous runs of one angle. */
export function contiguousRuns (rows: readonly number[], angles: readonly number[]): number[][] {
  const runs: number[][] = []
  let current: number[] = []
  for (const row of rows) {
    const last = current[current.length - 1]
    if (current.length && (row !== last + 1 || angles[row] !== angles[last])) {
      runs.push(current)
      current = []
    }
    current.push(row)
  }
  if (current.length) runs.push(current)
  return runs
}

/** Novelty scores of every window of some frame runs (each run its own stream). */
export function windowNovelty (
  predictor: DoorPredictor,
  runs: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>,
  hysteresis: HysteresisOptions = predictor.meta.hysteresis
): { scores: number[], recalibrated: number } {
  const scores: number[] = []
  let recalibrated = 0
  const row = new Float64Array(DOOR_FRAME_WIDTH)
  for (const run of runs) {
    const window = new FrameWindow(predictor.meta.window, DOOR_FRAME_WIDTH)
    const features: Float32Array[] = []
    for (const frame of run) {
      doorFrameFeaturesInto(frame, predictor.meta.featureSet, row)
      window.push(row)
      if (window.ready) features.push(window.features())
    }
    const pipeline = new DoorPipeline({ ...predictor.meta, hysteresis })
    predictor.predict(features).forEach((prediction, i) => {
      scores.push(prediction.novelty)
      pipeline.observe(prediction, i)
      if (pipeline.door.needsRecalibration) recalibrated++
    })
  }
  return { scores, recalibrated }
}

/**
 * A copy of frames with their 52 signal subcarriers (magnitude and phase
 * together) in a seeded random order (CH32 stays in place): the same radio
 * statistics, another room's channel shape. A shifted set for novelty tests.
 */
export function permuteSubcarriers (frames: ReadonlyArray<ArrayLike<number>>, seed = 1): Float32Array[] {
  const signal = Array.from({ length: SUBCARRIERS }, (_, k) => k).filter((k) => k !== DC_INDEX)
  const order = signal.slice()
  let state = seed >>> 0
  const random = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return frames.map((frame) => {
    const out = Float32Array.from(frame as ArrayLike<number>)
    signal.forEach((k, i) => {
      out[k] = frame[order[i]]
      out[SUBCARRIERS + k] = frame[SUBCARRIERS + order[i]]
    })
    return out
  })
}

/** Evaluation options besides the training ones. */
export interface DoorEvaluationOptions {
  /** Share of each angle's rows held out as its test tail (default .2). */
  holdout?: number
  /** Shifted recordings for novelty.auc. */
  shifted?: readonly ShiftedSet[]
}

/** Scores a replay and the novelty sets into the evaluation figures. */
export function scoreReplay (
  predictor: DoorPredictor,
  replay: ReplayResult,
  shifted: readonly ShiftedSet[] = [],
  hysteresis: HysteresisOptions = predictor.meta.hysteresis
): Omit<DoorEvaluation, 'holdout' | 'trainFrames' | 'testFrames' | 'tails' | 'trainingSeconds'> {
  const labels = predictor.meta.labels
  const windows = replay.windows
  let right = 0
  let angleHeadRight = 0
  for (const { angle, prediction } of windows) {
    if (prediction.angle === angle) right++
    let best = 0
    for (let c = 1; c < labels.length; c++) if (prediction.angleProbabilities[c] > prediction.angleProbabilities[best]) best = c
    if (labels[best] === angle) angleHeadRight++
  }
  const perWindow = openClosedFigures(windows.map((w) => isClosed(w.angle)), windows.map((w) => w.prediction.state === 'closed'))
  // the 7-class view of the windows: the window's angle (0 when the closed head says closed) against the true one
  const sevenClass = evaluate(labels, windows.map((w) => w.angle), windows.map((w) => w.prediction.angle), 0)
  const frames = replay.frames
  const door = doorStateEvaluation(frames, predictor.meta.window, replay.latencyFrames)
  const evaluation: ReturnType<typeof scoreReplay> = {
    accuracy: windows.length ? right / windows.length : 0,
    openClosed: strip(perWindow),
    angleHeadAccuracy: windows.length ? angleHeadRight / windows.length : 0,
    perClass: sevenClass.perClass,
    confusion: sevenClass.confusion,
    doorState: {
      accuracy: door.accuracy,
      openClosed: door.openClosed,
      window: door.window,
      latencyFrames: door.latencyFrames,
      frames: frames.length,
      unknownFrames: frames.filter((f) => f.state === 'unknown').length,
      confusion: door.confusion ?? [],
      perAngle: readingsByAngle(frames)
    },
    labels: [...labels],
    heldOutNovelShare: windows.length ? windows.filter((w) => w.prediction.novel).length / windows.length : 0,
    testWindows: windows.length,
    trainRows: predictor.meta.trainFrames,
    testRows: windows.length
  }
  if (shifted.length) {
    const heldOut = windows.map((w) => w.prediction.novelty)
    const sets = shifted.map((set) => {
      const { scores, recalibrated } = windowNovelty(predictor, set.runs, hysteresis)
      return { name: set.name, scores, recalibrated }
    })
    evaluation.novelty = {
      auc: rocAuc(heldOut, sets.flatMap((set) => set.scores)),
      heldOutNovelShare: heldOut.length ? heldOut.filter((s) => s > 1).length / heldOut.length : 0,
      sets: sets.map((set) => ({
        name: set.name,
        auc: rocAuc(heldOut, set.scores),
        windows: set.scores.length,
        novelShare: set.scores.length ? set.scores.filter((s) => s > 1).length / set.scores.length : 0,
        recalibrationShare: set.scores.length ? set.recalibrated / set.scores.length : 0
      }))
    }
  }
  return evaluation
}

function strip (figures: OpenClosedFigures): OpenClosed {
  return { accuracy: figures.accuracy, balancedAccuracy: figures.balancedAccuracy, closedF1: figures.closedF1 }
}

/**
 * A door model's evaluation in the schema's shape (schemas/model.ts
 * `Evaluation`), as `GET /training/get/evaluation` serves it and a version's
 * meta carries it: per-window 7-class accuracy, perClass and confusion over
 * the calibrated angles (`testRows` = test windows, `trainRows` = train
 * frames), the per-window open/closed figures (`f1` = closedF1 for old
 * clients), `doorState` (the replayed tails, with its 2 × 3 confusion) and,
 * when shifted sets were scored, `novelty: {auc}`. Only the schema's fields:
 * the door-only figures (angle head, unknown frames, novelty per set) stay in
 * the DoorEvaluation.
 * @throws Error when the evaluation lacks the confusion figures (one made before they existed)
 */
export function toEvaluation (door: DoorEvaluation): Evaluation {
  if (!Array.isArray(door.confusion) || !Array.isArray(door.perClass) || !Array.isArray(door.doorState?.confusion)) {
    throw new Error('this door evaluation has no confusion figures (made by an older doorsense): evaluate or calibrate the door again')
  }
  const d = door.doorState
  const evaluation: Evaluation = {
    accuracy: door.accuracy,
    labels: [...door.labels],
    perClass: door.perClass.map((c) => ({ label: c.label, precision: c.precision, recall: c.recall, f1: c.f1, support: c.support })),
    confusion: door.confusion.map((row) => [...row]),
    openClosed: {
      accuracy: door.openClosed.accuracy,
      balancedAccuracy: door.openClosed.balancedAccuracy,
      closedF1: door.openClosed.closedF1,
      f1: door.openClosed.closedF1
    },
    doorState: {
      accuracy: d.accuracy,
      openClosed: { accuracy: d.openClosed.accuracy, balancedAccuracy: d.openClosed.balancedAccuracy, closedF1: d.openClosed.closedF1 },
      window: d.window,
      latencyFrames: d.latencyFrames,
      confusion: d.confusion.map((row) => [...row])
    },
    trainRows: door.trainRows,
    testRows: door.testRows
  }
  if (door.novelty) evaluation.novelty = { auc: door.novelty.auc }
  return evaluation
}

/**
 * The blocked split as training input and test tails: each angle's last
 * `holdout` share of rows (in file order) is held out; every contiguous
 * stretch of held-out rows of one angle is a tail (a fresh device).
 * @throws Error when nothing is held out
 */
export function blockedTails (input: DoorTrainingInput, holdout: number): { train: DoorTrainingInput, tails: Tail[] } {
  const split = blockedSplit(input.angles, holdout)
  if (split.test.length === 0) throw new Error(`holdout ${holdout} leaves no test rows`)
  return {
    train: { frames: split.train.map((r) => input.frames[r]), angles: split.train.map((r) => input.angles[r]) },
    tails: contiguousRuns(split.test, input.angles).map((run) => ({ angle: input.angles[run[0]], frames: run.map((r) => input.frames[r]) }))
  }
}

/**
 * The blocked evaluation: trains on each angle's first 1 − holdout of rows,
 * replays each test tail through a fresh pipeline, scores novelty against the
 * shifted sets. Returns the model trained on the train part too.
 */
export async function evaluateDoorModel (
  tf: Tf,
  input: DoorTrainingInput,
  options: Parameters<typeof trainDoorModel>[2] = {},
  evaluationOptions: DoorEvaluationOptions = {}
): Promise<{ evaluation: DoorEvaluation, trained: TrainedDoorModel }> {
  const holdout = evaluationOptions.holdout ?? 0.2
  const { train, tails } = blockedTails(input, holdout)
  const trained = await trainDoorModel(tf, train, options)
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    const replay = replayTails(predictor, tails)
    const scored = scoreReplay(predictor, replay, evaluationOptions.shifted)
    const evaluation: DoorEvaluation = {
      ...scored,
      holdout,
      trainFrames: train.frames.length,
      testFrames: tails.reduce((n, tail) => n + tail.frames.length, 0),
      tails: tails.length,
      trainingSeconds: trained.meta.trainingSeconds
    }
    return { evaluation, trained }
  } finally {
    predictor.dispose()
  }
}

/**
 * Frames per angle a calibration needs for {@link calibrateDoorModel} to
 * evaluate it: the train part must hold two windows (the trainer's minimum)
 * and the tail one window plus `enter` frames.
 */
export function minimumFramesForEvaluation (window: number, enter: number, holdout = 0.2): number {
  for (let n = 2 * window; ; n++) {
    const tail = tailSize(n, holdout)
    if (n - tail >= minimumFramesPerAngle(window) && tail >= window - 1 + enter) return n
  }
}
