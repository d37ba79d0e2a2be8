/**
 * The offline evaluation of a session CSV (`doorsense eval`): trains in this
 * process on the blocked train part (each label's rows but its last
 * `holdout` share) and reports how the models do on those tails:
 * - the global per-frame model (ml/global/trainer.ts): accuracy, per-class figures,
 *   confusion matrix, open/closed, and its votes through the legacy smoother
 *   (`smoothedAccuracy`);
 * - `doorState`: the windowed door model (ml/door/train.ts, its defaults)
 *   trained on the same train part, each label's tail replayed through a
 *   fresh pipeline exactly as the server runs a calibrated door
 *   (ml/door/evaluation.ts evaluateDoorModel); absent, with
 *   `doorModel.skipped` saying why, when the set cannot calibrate a door;
 * - the ajar self-check (ml/door/self-check.ts), and with a shifted set,
 *   `novelty.auc`.
 * Nothing is stored. Here in ml/training/ because it runs both models (which
 * know nothing of each other); bin/commands/eval.ts parses the flags and
 * prints what {@link evaluateSession} gives.
 */
import { parseFrame } from '../../domain/frames.js'
import { angleCoverage, countByAngle } from '../../domain/labels.js'
import { headerProblem, readSessionCsv } from '../../domain/session-csv.js'
import { DEFAULT_SMOOTHER_OPTIONS, scoreSmoothed, sequencesByLabel } from '../../domain/smoother.js'
import {
  contiguousRuns, evaluateDoorModel, minimumFramesForEvaluation, type AngleReadings, type DoorEvaluation, type SelfCheck, type ShiftedSet
} from '../door/evaluation.js'
import { ajarSelfCheck } from '../door/self-check.js'
import type { DoorTrainingOptions } from '../door/model-types.js'
import { DEFAULT_DOOR_TRAINING, resolveDoorTraining } from '../door/train.js'
import { DEFAULT_TRAINING_OPTIONS, trainModel } from '../global/trainer.js'
import type { EpochReport, ModelMeta, Tf, TrainedModel } from '../model-types.js'
import type { TrainingSet } from '../training-set.js'
import type { Evaluation, TrainingOptions } from '../../schemas/model.js'

/** What eval reports (also the --json object). */
export interface EvalReport extends Evaluation {
  data: string
  rows: number
  /** The options the run used, seed included. */
  options: ModelMeta['options']
  backend: string
  epochsTrained: number
  trainingSeconds: number
  /**
   * Accuracy of the door state the server would report: each label's test
   * tail streamed in order through the server's smoother (default window and hold).
   */
  smoothedAccuracy: number
  smoothed: { window: number, hold: number, openClosedAccuracy: number }
  /** The windowed door model behind `doorState` and `novelty`, or why it was not evaluated. */
  doorModel: DoorModelReport
}

/** The door model's run: its settings and the figures the schema's doorState leaves out. */
export interface DoorModelReport {
  /** Why there is no doorState (FILE cannot calibrate a door); absent when evaluated. */
  skipped?: string
  window: number
  features: DoorTrainingOptions['features']
  epochs: number
  seed: number
  hysteresis: DoorTrainingOptions['hysteresis']
  trainingSeconds?: number
  /** Per window (one per test frame once its window is full): 7-class accuracy and open/closed figures. */
  perWindow?: { accuracy: number, windows: number, openClosed: DoorEvaluation['openClosed'] }
  /** Counted door-state frames (from each tail's first reported state on) and how many of them were unknown. */
  frames?: number
  unknownFrames?: number
  /** With --shifted: the shifted windows scored and the shares flagged novel. */
  novelty?: { shifted: string, windows: number, novelShare: number, heldOutNovelShare: number }
  /** Share of the door's own held-out windows flagged novel (false alarms: the door's own later frames). */
  heldOutNovelShare?: number
  /** Each test tail's door state by angle: frames reported closed / open / unknown. */
  perAngle?: AngleReadings[]
  /**
   * The ajar self-check a calibration of FILE's angles would run: the
   * smallest open angle's tail through the model, and each other open angle
   * through a model trained without it; fails when more than `limit` read closed.
   */
  selfCheck?: SelfCheck
}

/** The door model's settings eval runs (the server's defaults, seed and epochs as given). */
export function doorTrainingOf (args: { doorEpochs?: number }, seed: number): DoorTrainingOptions {
  return resolveDoorTraining({ epochs: args.doorEpochs, seed })
}

/**
 * Why `angles` cannot give a door model's blocked evaluation, or undefined
 * when they can: it needs the closed door and an open angle, and per angle
 * rows enough for a train part of two windows and a tail that reports
 * (domain/labels.ts angleCoverage).
 */
export function doorStateProblem (angles: readonly number[], holdout: number, options: Pick<DoorTrainingOptions, 'window' | 'hysteresis'>): string | undefined {
  const counts = countByAngle(angles)
  const need = minimumFramesForEvaluation(options.window, options.hysteresis.enter, holdout)
  const { hasClosed, openAngles, short } = angleCoverage(counts, need)
  if (!hasClosed || openAngles.length === 0) {
    const got = [...counts.keys()].sort((a, b) => a - b).map((a) => `${a}°`).join(', ')
    return `a door model needs rows of the closed door (0°) and of at least one open angle, got ${got}`
  }
  if (short.length) {
    const got = short.map((a) => `${counts.get(a)} for ${a}°`).join(', ')
    return `each angle needs at least ${need} rows for a door model's blocked evaluation (windows of ${options.window}, holdout ${holdout}), got ${got}`
  }
  return undefined
}

/**
 * Another recording as a shifted set, from its text: a session CSV (each
 * contiguous run of one label a stream of its own) or one frame per line in
 * any accepted encoding (one stream, in file order).
 * @param name what the set and the messages call it (the file)
 * @throws Error naming the lines that are wrong, or the window it is too short for
 */
export function shiftedSetOf (name: string, text: string, window: number): ShiftedSet {
  const lines = text.split(/\r?\n/)
  const first = lines.find((line) => line.trim() !== '') ?? ''
  const problems: string[] = []
  let runs: Float32Array[][]
  if (/^\uFEFF?\s*Label\s*,/.test(first) || headerProblem(first) === undefined) {
    const session = readSessionCsv(text)
    for (const problem of session.problems) problems.push(`line ${problem.line}: ${problem.reason}`)
    const angles = session.rows.map((row) => row.angle)
    runs = contiguousRuns(angles.map((_, i) => i), angles).map((run) => run.map((i) => session.rows[i].features))
  } else {
    const frames: Float32Array[] = []
    lines.forEach((line, i) => {
      if (line.trim() === '') return
      try {
        frames.push(parseFrame(line.trim()))
      } catch (err) {
        problems.push(`line ${i + 1}: ${(err as Error).message}`)
      }
    })
    runs = [frames]
  }
  if (problems.length) {
    const shown = problems.slice(0, 5).map((p) => `  ${p}`).join('\n') + (problems.length > 5 ? '\n  …' : '')
    throw new Error(`${name} is neither a valid session CSV nor one frame per line (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${shown}`)
  }
  const longest = Math.max(0, ...runs.map((run) => run.length))
  if (longest < window) throw new Error(`${name} needs at least ${window} consecutive frames for one window, got ${longest}`)
  return { name, runs }
}

/**
 * The held-out rows' true angles and predicted probabilities, label by label
 * in recording order: what a door-state smoother would have seen, e.g. for
 * `smoothedAccuracy`.
 */
export function holdoutStream (trained: TrainedModel, input: TrainingSet): { angles: number[], probabilities: number[][] } {
  const holdout = trained.holdout
  if (!holdout) return { angles: [], probabilities: [] }
  return { angles: holdout.rows.map((row) => input.angles[row]), probabilities: holdout.predictions.map((p) => p.probabilities) }
}

/** What the door model gave: its evaluation, or why there is none. */
export type DoorOutcome = { options: DoorTrainingOptions } & ({ evaluation: DoorEvaluation, shifted?: string } | { skipped: string })

/** The report of one run. */
export function evalReport (data: string, input: TrainingSet, trained: TrainedModel, backend: string, door?: DoorOutcome): EvalReport {
  const { meta } = trained
  if (!meta.evaluation) throw new Error('the training made no evaluation (no hold-out)')
  const stream = holdoutStream(trained, input)
  const smoothed = scoreSmoothed(sequencesByLabel(stream.angles, stream.probabilities), meta.labels, DEFAULT_SMOOTHER_OPTIONS)
  const o = door?.options ?? resolveDoorTraining()
  const doorModel: DoorModelReport = { window: o.window, features: o.features, epochs: o.epochs, seed: o.seed, hysteresis: { ...o.hysteresis } }
  const report: EvalReport = {
    data,
    rows: input.angles.length,
    options: meta.options,
    backend,
    epochsTrained: meta.epochsTrained ?? meta.options.epochs,
    trainingSeconds: meta.trainingSeconds,
    ...meta.evaluation,
    smoothedAccuracy: smoothed.accuracy,
    smoothed: { ...DEFAULT_SMOOTHER_OPTIONS, openClosedAccuracy: smoothed.openClosedAccuracy },
    doorModel
  }
  if (!door) doorModel.skipped = 'not run'
  else if ('skipped' in door) doorModel.skipped = door.skipped
  else {
    const e = door.evaluation
    const d = e.doorState
    report.doorState = {
      accuracy: d.accuracy,
      openClosed: { accuracy: d.openClosed.accuracy, balancedAccuracy: d.openClosed.balancedAccuracy, closedF1: d.openClosed.closedF1 },
      window: d.window,
      latencyFrames: d.latencyFrames,
      confusion: d.confusion.map((row) => [...row])
    }
    doorModel.trainingSeconds = e.trainingSeconds
    doorModel.perWindow = { accuracy: e.accuracy, windows: e.testWindows, openClosed: { ...e.openClosed } }
    doorModel.frames = d.frames
    doorModel.unknownFrames = d.unknownFrames
    if (e.heldOutNovelShare !== undefined) doorModel.heldOutNovelShare = e.heldOutNovelShare
    if (d.perAngle) doorModel.perAngle = d.perAngle.map((r) => ({ ...r }))
    if (e.selfCheck) doorModel.selfCheck = { ...e.selfCheck, checks: e.selfCheck.checks.map((c) => ({ ...c })) }
    if (e.novelty && door.shifted !== undefined) {
      report.novelty = { auc: e.novelty.auc }
      const set = e.novelty.sets[0]
      doorModel.novelty = {
        shifted: door.shifted,
        windows: set?.windows ?? 0,
        novelShare: set?.novelShare ?? 0,
        heldOutNovelShare: e.novelty.heldOutNovelShare
      }
    }
  }
  return report
}

/** What one {@link evaluateSession} runs on, besides the set. */
export interface SessionEvaluationRun {
  /** What the report calls the set (the file). */
  data: string
  /** The global model's training options (holdout included). */
  options: TrainingOptions
  /** The door model's epochs, when not its default. */
  doorEpochs?: number
  /** Another recording for the door model's novelty AUC. */
  shifted?: ShiftedSet
  /** The backend's name, as the report shows it. */
  backend: string
  /** Each epoch of the global model's training. */
  onEpoch?: (report: EpochReport) => void
  /** A line of progress (what is being trained, what was skipped and why). */
  say?: (line: string) => void
}

/**
 * Trains the global model on `input`'s train part, then (when the set can
 * calibrate a door) the door model with its ajar self-check, and reports on
 * the held-out tails.
 * @throws Error when a training fails (the door model's message starts "door model: ")
 */
export async function evaluateSession (tf: Tf, input: TrainingSet, run: SessionEvaluationRun): Promise<EvalReport> {
  const say = run.say ?? (() => {})
  const holdout = run.options.holdout ?? DEFAULT_TRAINING_OPTIONS.holdout
  // the door model's settings (the seed is fixed below, once the per-frame run has drawn one)
  const doorProblem = doorStateProblem(input.angles, holdout, doorTrainingOf(run, DEFAULT_DOOR_TRAINING.seed))
  say(`training on ${input.angles.length} rows of ${run.data} (${run.backend} backend)…`)
  const trained = await trainModel(tf, input, run.options, run.onEpoch)
  const doorOptions = doorTrainingOf(run, trained.meta.options.seed ?? DEFAULT_DOOR_TRAINING.seed)
  const shifted = run.shifted
  let door: DoorOutcome
  if (doorProblem !== undefined) {
    say(`door state not evaluated: ${doorProblem}${shifted ? ' (so no novelty for --shifted either)' : ''}`)
    door = { options: doorOptions, skipped: doorProblem }
  } else {
    say(`training the windowed door model (k ${doorOptions.window}, ${doorOptions.epochs} epochs) and replaying each label's test tail…`)
    try {
      const doorInput = { frames: input.features, angles: input.angles }
      const trainingOptions = { epochs: doorOptions.epochs, seed: doorOptions.seed }
      const { evaluation } = await evaluateDoorModel(tf, doorInput, trainingOptions, { holdout, shifted: shifted ? [shifted] : [] })
      say('running the ajar self-check (a model without each open angle but the smallest)…')
      const selfCheck = await ajarSelfCheck(tf, doorInput, evaluation, trainingOptions)
      if (selfCheck) evaluation.selfCheck = selfCheck
      door = shifted ? { options: doorOptions, evaluation, shifted: shifted.name } : { options: doorOptions, evaluation }
    } catch (err) {
      throw new Error(`door model: ${(err as Error).message}`)
    }
  }
  return evalReport(run.data, input, trained, run.backend, door)
}
