/**
 * `doorsense eval --data FILE.csv [--holdout 0.2] [--json] [--shifted OTHER] [training options]`:
 * trains in this process on the blocked train part of a session CSV (each
 * label's rows but its last `holdout` share) and reports how the model does
 * on those tails:
 * - the global per-frame model (ml/global/trainer.ts): accuracy, per-class figures,
 *   confusion matrix, open/closed (accuracy, balanced accuracy, closed F1),
 *   and its votes through the legacy smoother (`smoothedAccuracy`);
 * - `doorState`: the windowed door model (ml/door/train.ts, its defaults)
 *   trained on the same train part, each label's tail replayed through a
 *   fresh pipeline exactly as the server runs a calibrated door
 *   (ml/door/evaluation.ts evaluateDoorModel); absent, with
 *   `doorModel.skipped` saying why, when the file cannot calibrate a door
 *   (no closed or no open angle, too few rows per angle);
 * - the ajar self-check a door calibrated on FILE's angles would run
 *   (ml/door/self-check.ts), and the share of the door model's own held-out
 *   windows flagged novel;
 * - with --shifted, `novelty.auc`: how well the door model's novelty score
 *   tells OTHER's windows (a session CSV, or one frame per line in any
 *   accepted encoding) from FILE's held-out windows.
 * Nothing is stored. Results go to stdout (with --json exactly one JSON
 * object), progress to stderr (a bar on a terminal, a few lines otherwise).
 * Exit codes: 0 ok, 1 bad arguments or an unreadable/invalid file, 2 training failed.
 */
import { readFileSync } from 'node:fs'
import { parseFrame } from '../../domain/frames.js'
import { CLOSED_ANGLE, labelSet } from '../../domain/labels.js'
import { headerProblem, readSessionCsv } from '../../domain/session-csv.js'
import { DEFAULT_SMOOTHER_OPTIONS, scoreSmoothed, sequencesByLabel } from '../../domain/smoother.js'
import { chooseBackend, type BackendRequest, type ChosenBackend } from '../../ml/backend.js'
import { contiguousRuns, evaluateDoorModel, minimumFramesForEvaluation, type AngleReadings, type DoorEvaluation, type SelfCheck, type ShiftedSet } from '../../ml/door/evaluation.js'
import { ajarSelfCheck } from '../../ml/door/self-check.js'
import type { DoorTrainingOptions } from '../../ml/door/model-types.js'
import { DEFAULT_DOOR_TRAINING, resolveDoorTraining } from '../../ml/door/train.js'
import { DEFAULT_TRAINING_OPTIONS, resolveTrainingOptions, trainModel } from '../../ml/global/trainer.js'
import { type EpochReport, type ModelMeta, type TrainedModel } from '../../ml/model-types.js'
import { type TrainingSet } from '../../ml/training-set.js'
import type { Evaluation, TrainingOptions } from '../../schemas/model.js'
import { epochProgress, parseOptions, processIo, UsageError, type CommandIo } from './command-line.js'

const D = DEFAULT_TRAINING_OPTIONS

const USAGE = `usage: doorsense eval --data FILE.csv [--holdout 0.2] [--json] [--shifted OTHER] [options]

Trains on the blocked train part of FILE (a session CSV: Label, CH6_mag … CH58_phase)
and reports on the held-out tail of each label: the global per-frame model, and the
door state of the windowed door model (k ${DEFAULT_DOOR_TRAINING.window}) replayed as the server runs a calibrated door.
Nothing is stored.

  --data FILE           the session CSV (required)
  --holdout SHARE       share of each label's last rows held out, 0 < SHARE <= 0.5 (default ${D.holdout})
  --json                print one JSON object instead of the text report
  --shifted OTHER       another recording (a session CSV, or one frame per line in any accepted
                        encoding): adds novelty.auc, how well the door model tells its windows
                        from FILE's held-out windows
  --door-epochs N       the door model's training epochs, 1..1000 (default ${DEFAULT_DOOR_TRAINING.epochs})
  --epochs N            training epochs, 1..1000 (default ${D.epochs})
  --architecture A      softmax | original | mlp (default ${D.architecture})
  --features F          raw | magnitudes | magnitudes+phase-diff (default ${D.features})
  --batch-size N        rows per training step (default ${D.batchSize})
  --learning-rate X     Adam learning rate (default ${D.learningRate})
  --l2 X                L2 weight on the kernels (default ${D.l2})
  --early-stopping      stop on a blocked validation slice of the train part (default off)
  --seed N              seed for initial weights and batch order of both models (default: drawn, and reported)
  --backend B           auto | gpu | node | cpu TensorFlow.js backend (default auto)

Exit codes: 0 ok, 1 bad arguments or unreadable file, 2 training failed.`

/** The validated command line. */
export interface EvalArgs {
  data: string
  json: boolean
  backend: BackendRequest
  options: TrainingOptions
  /** --shifted OTHER, when given. */
  shifted?: string
  /** --door-epochs, when given. */
  doorEpochs?: number
}

/** The command-line flag of a training option: batchSize → --batch-size. */
function flagOf (option: string): string {
  return '--' + option.replace(/[A-Z]/g, (letter) => '-' + letter.toLowerCase())
}

function numberOption (flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const parsed = Number(value)
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(value)}`)
  return parsed
}

/**
 * Parses and checks eval's arguments.
 * @throws {UsageError} naming the wrong option
 */
export function parseEvalArgs (argv: string[]): EvalArgs | 'help' {
  const values = parseOptions(argv, {
    data: { type: 'string' },
    holdout: { type: 'string' },
    json: { type: 'boolean' },
    epochs: { type: 'string' },
    architecture: { type: 'string' },
    features: { type: 'string' },
    'batch-size': { type: 'string' },
    'learning-rate': { type: 'string' },
    l2: { type: 'string' },
    'early-stopping': { type: 'boolean' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    shifted: { type: 'string' },
    'door-epochs': { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  })
  if (values.help) return 'help'
  if (values.data === undefined || values.data.trim() === '') throw new UsageError('--data FILE.csv is required')
  const backend = values.backend ?? 'auto'
  if (!['auto', 'gpu', 'node', 'cpu'].includes(backend)) throw new UsageError(`--backend must be auto, gpu, node or cpu, got ${JSON.stringify(backend)}`)
  const holdout = numberOption('--holdout', values.holdout) ?? D.holdout
  // eval reports on the hold-out: without one there is nothing to report
  if (!(holdout > 0)) throw new UsageError(`--holdout must be above 0 (eval reports on the held-out tails), got ${holdout}`)
  const options: TrainingOptions = {
    holdout,
    epochs: numberOption('--epochs', values.epochs),
    architecture: values.architecture as TrainingOptions['architecture'],
    features: values.features as TrainingOptions['features'],
    batchSize: numberOption('--batch-size', values['batch-size']),
    learningRate: numberOption('--learning-rate', values['learning-rate']),
    l2: numberOption('--l2', values.l2),
    earlyStopping: values['early-stopping'],
    seed: numberOption('--seed', values.seed)
  }
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as TrainingOptions
  try {
    resolveTrainingOptions(given)
  } catch (err) {
    // "training option batchSize: …" → "--batch-size: …"
    throw new UsageError((err as Error).message.replace(/^training option (\w+)/, (_, name: string) => flagOf(name)))
  }
  if (values.shifted !== undefined && values.shifted.trim() === '') throw new UsageError('--shifted needs a file')
  const doorEpochs = numberOption('--door-epochs', values['door-epochs'])
  try {
    resolveDoorTraining({ epochs: doorEpochs, seed: given.seed })
  } catch (err) {
    // "door training option epochs must …" → "--door-epochs must …"
    throw new UsageError((err as Error).message.replace(/^door training option epochs/, '--door-epochs').replace(/^door training option seed/, '--seed (door model)'))
  }
  const args: EvalArgs = { data: values.data, json: values.json ?? false, backend: backend as BackendRequest, options: given }
  if (values.shifted !== undefined) args.shifted = values.shifted
  if (doorEpochs !== undefined) args.doorEpochs = doorEpochs
  return args
}

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
export function doorTrainingOf (args: Pick<EvalArgs, 'doorEpochs'>, seed: number): DoorTrainingOptions {
  return resolveDoorTraining({ epochs: args.doorEpochs, seed })
}

/**
 * Why `angles` cannot give a door model's blocked evaluation, or undefined
 * when they can: it needs the closed door and an open angle, and per angle
 * rows enough for a train part of two windows and a tail that reports.
 */
export function doorStateProblem (angles: readonly number[], holdout: number, options: Pick<DoorTrainingOptions, 'window' | 'hysteresis'>): string | undefined {
  const labels = labelSet(angles)
  if (!labels.includes(CLOSED_ANGLE) || labels.length < 2) {
    return `a door model needs rows of the closed door (0°) and of at least one open angle, got ${labels.map((a) => `${a}°`).join(', ')}`
  }
  const need = minimumFramesForEvaluation(options.window, options.hysteresis.enter, holdout)
  const counts = new Map<number, number>()
  for (const angle of angles) counts.set(angle, (counts.get(angle) ?? 0) + 1)
  const short = labels.filter((label) => (counts.get(label) as number) < need)
  if (short.length) return `each angle needs at least ${need} rows for a door model's blocked evaluation (windows of ${options.window}, holdout ${holdout}), got ${short.map((a) => `${counts.get(a)} for ${a}°`).join(', ')}`
  return undefined
}

/**
 * Reads --shifted OTHER: a session CSV (each contiguous run of one label a
 * stream of its own) or one frame per line in any accepted encoding (one
 * stream, in file order).
 * @throws {UsageError} naming the file and the lines that are wrong
 */
export function readShifted (file: string, window: number): ShiftedSet {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--shifted: cannot read ${file}: ${(err as Error).message}`)
  }
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
    throw new UsageError(`--shifted: ${file} is neither a valid session CSV nor one frame per line (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.slice(0, 5).map((p) => `  ${p}`).join('\n')}${problems.length > 5 ? '\n  …' : ''}`)
  }
  const longest = Math.max(0, ...runs.map((run) => run.length))
  if (longest < window) throw new UsageError(`--shifted: ${file} needs at least ${window} consecutive frames for one window, got ${longest}`)
  return { name: file, runs }
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
      doorModel.novelty = { shifted: door.shifted, windows: set?.windows ?? 0, novelShare: set?.novelShare ?? 0, heldOutNovelShare: e.novelty.heldOutNovelShare }
    }
  }
  return report
}

const f3 = (x: number): string => x.toFixed(3)
const percent = (x: number): string => `${(100 * x).toFixed(1)} %`

/** The door-model lines of the text report. */
function doorLines (report: EvalReport): string[] {
  const m = report.doorModel
  const d = report.doorState
  const setting = `k ${m.window}, ${m.features}, ${m.epochs} epochs, seed ${m.seed}, hysteresis enter ${m.hysteresis.enter} / leave ${m.hysteresis.leave}`
  if (!d || m.skipped !== undefined) return [`door state (windowed door model, ${setting}): not evaluated: ${m.skipped ?? 'no evaluation'}`]
  const lines = [
    `door state (windowed door model as the server runs a calibrated door, ${setting}; each label's test tail replayed): accuracy ${f3(d.accuracy)}, openClosed: accuracy ${f3(d.openClosed.accuracy)}, balanced accuracy ${f3(d.openClosed.balancedAccuracy)}, closed F1 ${f3(d.openClosed.closedF1)}; latency ${d.latencyFrames} frames; ${m.frames ?? 0} frames counted, ${m.unknownFrames ?? 0} unknown`
  ]
  if (m.perWindow) lines.push(`  per window (${m.perWindow.windows} windows): accuracy ${f3(m.perWindow.accuracy)}, openClosed: accuracy ${f3(m.perWindow.openClosed.accuracy)}, balanced accuracy ${f3(m.perWindow.openClosed.balancedAccuracy)}, closed F1 ${f3(m.perWindow.openClosed.closedF1)}; trained in ${(m.trainingSeconds ?? 0).toFixed(1)} s`)
  if (d.confusion) {
    const [closedRow, openRow] = d.confusion
    lines.push(`  door state confusion (rows = true, columns = reported closed / open / unknown): closed ${closedRow.join(' / ')}; open ${openRow.join(' / ')}`)
  }
  if (m.perAngle) lines.push(`  door state by angle (closed / open / unknown frames): ${m.perAngle.map((r) => `${r.angle}° ${r.closed}/${r.open}/${r.unknown}`).join(', ')}`)
  if (m.selfCheck) {
    const checks = m.selfCheck.checks.map((c) => `${c.angle}° ${c.model} read closed ${percent(c.closedShare)}${c.passed ? '' : ' (fails)'}`).join('; ')
    lines.push(`ajar self-check (ajar ${m.selfCheck.ajarAngle}°, at most ${percent(m.selfCheck.limit)} may read closed): ${m.selfCheck.passed ? 'passes' : 'FAILS: this recording cannot tell ajar from closed'}: ${checks}`)
  }
  if (m.heldOutNovelShare !== undefined) lines.push(`novelty: the door's own held-out windows flagged ${percent(m.heldOutNovelShare)}`)
  if (report.novelty && m.novelty) {
    lines.push(`novelty: AUC ${f3(report.novelty.auc)} (${m.novelty.shifted}: ${m.novelty.windows} windows, ${percent(m.novelty.novelShare)} flagged novel; held-out windows flagged ${percent(m.novelty.heldOutNovelShare)})`)
  }
  return lines
}

/** The text report: summary, per-class table, confusion matrix. */
export function formatReport (report: EvalReport): string {
  const o = report.options
  const cells = (values: Array<string | number>, width: number) => values.map((value) => String(value).padStart(width)).join(' ')
  const angleWidth = Math.max(6, ...report.labels.map((label) => `${label}°`.length + 1))
  const lines = [
    `data: ${report.data} — ${report.rows} rows, ${report.labels.length} labels; blocked hold-out ${o.holdout} of each label (${report.trainRows} train rows, ${report.testRows} test rows)`,
    `model: ${o.architecture} on ${o.features}, ${report.epochsTrained}${o.earlyStopping ? ` of ${o.epochs} (early stopping)` : ''} epochs, batch ${o.batchSize}, learning rate ${o.learningRate}, L2 ${o.l2}, seed ${o.seed}; ${report.backend} backend, ${report.trainingSeconds.toFixed(1)} s`,
    '',
    `accuracy: ${f3(report.accuracy)} (${report.labels.length} classes)`,
    `openClosed: accuracy ${f3(report.openClosed.accuracy)}, balanced accuracy ${f3(report.openClosed.balancedAccuracy)}, closed F1 ${f3(report.openClosed.closedF1)} (per frame)`,
    `smoothed door state (window ${report.smoothed.window}, hold ${report.smoothed.hold}, the server's vote smoother for the global model): accuracy ${f3(report.smoothedAccuracy)}, open/closed ${f3(report.smoothed.openClosedAccuracy)}`,
    ...doorLines(report),
    '',
    `${'label'.padStart(angleWidth)} ${cells(['precision', 'recall', 'f1', 'support'], 9)}`,
    ...report.perClass.map((c) => `${`${c.label}°`.padStart(angleWidth)} ${cells([f3(c.precision), f3(c.recall), f3(c.f1), c.support], 9)}`),
    '',
    'confusion (rows = true angle, columns = predicted angle):',
    `${''.padStart(angleWidth)} ${cells(report.labels.map((label) => `${label}°`), 5)}`,
    ...report.confusion.map((row, i) => `${`${report.labels[i]}°`.padStart(angleWidth)} ${cells(row, 5)}`)
  ]
  return lines.join('\n') + '\n'
}

/** Epoch progress on stderr, with the figures eval watches. */
function progressReporter (stderr: CommandIo['stderr'], earlyStopping: boolean): { onEpoch: (report: EpochReport) => void, end: () => void } {
  const bar = epochProgress(stderr)
  // without early stopping the watched part is the hold-out itself (shown, never used to decide)
  const watched = earlyStopping ? 'val acc' : 'held-out acc'
  return {
    onEpoch (report) {
      bar.show(report.epoch, report.epochs, `loss ${report.loss.toFixed(3)} train acc ${f3(report.accuracy)}${report.validationAccuracy === undefined ? '' : ` ${watched} ${f3(report.validationAccuracy)}`}`)
    },
    end: bar.end
  }
}

/** Runs `eval`; resolves to the exit code. */
export async function run (argv: string[], io: CommandIo = processIo): Promise<number> {
  let args: EvalArgs | 'help'
  try {
    args = parseEvalArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.stderr.write(`doorsense eval: ${err.message}\n\n${USAGE}\n`)
    return 1
  }
  if (args === 'help') {
    io.stdout.write(USAGE + '\n')
    return 0
  }

  let text: string
  try {
    text = readFileSync(args.data, 'utf8')
  } catch (err) {
    io.stderr.write(`doorsense eval: cannot read ${args.data}: ${(err as Error).message}\n`)
    return 1
  }
  const { rows, problems } = readSessionCsv(text)
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).map((problem) => `  line ${problem.line}: ${problem.reason}`)
    io.stderr.write(`doorsense eval: ${args.data} is not a valid session CSV (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${shown.join('\n')}${problems.length > 5 ? '\n  …' : ''}\n`)
    return 1
  }
  const input: TrainingSet = { kind: 'csi', features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
  const holdout = args.options.holdout ?? D.holdout
  // the door model's settings (the seed is fixed below, once the per-frame run has drawn one)
  const doorDefaults = doorTrainingOf(args, DEFAULT_DOOR_TRAINING.seed)
  const doorProblem = doorStateProblem(input.angles, holdout, doorDefaults)
  let shifted: ShiftedSet | undefined
  if (args.shifted !== undefined) {
    try {
      shifted = readShifted(args.shifted, doorDefaults.window)
    } catch (err) {
      if (!(err instanceof UsageError)) throw err
      io.stderr.write(`doorsense eval: ${err.message}\n`)
      return 1
    }
  }

  let backend: ChosenBackend
  try {
    backend = await chooseBackend(args.backend)
  } catch (err) {
    io.stderr.write(`doorsense eval: --backend ${args.backend}: ${(err as Error).message}\n`)
    return 1
  }
  const { tf, info } = backend
  const progress = progressReporter(io.stderr, args.options.earlyStopping ?? D.earlyStopping)
  let report: EvalReport
  try {
    io.stderr.write(`training on ${rows.length} rows of ${args.data} (${info.backend} backend)…\n`)
    const trained = await trainModel(tf, input, args.options, progress.onEpoch)
    progress.end()
    const doorOptions = doorTrainingOf(args, trained.meta.options.seed ?? DEFAULT_DOOR_TRAINING.seed)
    let door: DoorOutcome
    if (doorProblem !== undefined) {
      io.stderr.write(`door state not evaluated: ${doorProblem}${shifted ? ' (so no novelty for --shifted either)' : ''}\n`)
      door = { options: doorOptions, skipped: doorProblem }
    } else {
      io.stderr.write(`training the windowed door model (k ${doorOptions.window}, ${doorOptions.epochs} epochs) and replaying each label's test tail…\n`)
      try {
        const doorInput = { frames: input.features, angles: input.angles }
        const trainingOptions = { epochs: doorOptions.epochs, seed: doorOptions.seed }
        const { evaluation } = await evaluateDoorModel(tf, doorInput, trainingOptions, { holdout, shifted: shifted ? [shifted] : [] })
        io.stderr.write('running the ajar self-check (a model without each open angle but the smallest)…\n')
        const selfCheck = await ajarSelfCheck(tf, doorInput, evaluation, trainingOptions)
        if (selfCheck) evaluation.selfCheck = selfCheck
        door = shifted ? { options: doorOptions, evaluation, shifted: shifted.name } : { options: doorOptions, evaluation }
      } catch (err) {
        throw new Error(`door model: ${(err as Error).message}`)
      }
    }
    report = evalReport(args.data, input, trained, info.backend, door)
  } catch (err) {
    progress.end()
    io.stderr.write(`doorsense eval: training failed: ${(err as Error).message}\n`)
    return 2
  }
  io.stdout.write(args.json ? JSON.stringify(report) + '\n' : formatReport(report))
  return 0
}
