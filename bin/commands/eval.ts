/**
 * `doorsense eval --data FILE.csv [--holdout 0.2] [--json] [training options]`:
 * trains in this process on the blocked train part of a session CSV (each
 * label's rows but its last `holdout` share) and reports how the model does
 * on those tails: accuracy, per-class figures, confusion matrix, open/closed.
 * Nothing is stored. Results go to stdout (with --json exactly one JSON
 * object), progress to stderr (a bar on a terminal, a few lines otherwise).
 * Exit codes: 0 ok, 1 bad arguments or an unreadable/invalid file, 2 training failed.
 */
import { readFileSync } from 'node:fs'
import { readSessionCsv } from '../../domain/session-csv.js'
import { DEFAULT_SMOOTHER_OPTIONS, scoreSmoothed, sequencesByLabel } from '../../domain/smoother.js'
import { chooseBackend, type BackendRequest, type ChosenBackend } from '../../ml/backend.js'
import { DEFAULT_TRAINING_OPTIONS, resolveTrainingOptions, trainModel } from '../../ml/trainer.js'
import { type EpochReport, type ModelMeta, type TrainedModel } from '../../ml/model-types.js'
import { type TrainingSet } from '../../ml/training-set.js'
import type { Evaluation, TrainingOptions } from '../../schemas/model.js'
import { epochProgress, parseOptions, processIo, UsageError, type CommandIo } from './command-line.js'

const D = DEFAULT_TRAINING_OPTIONS

const USAGE = `usage: doorsense eval --data FILE.csv [--holdout 0.2] [--json] [options]

Trains on the blocked train part of FILE (a session CSV: Label, CH6_mag … CH58_phase)
and reports on the held-out tail of each label. Nothing is stored.

  --data FILE           the session CSV (required)
  --holdout SHARE       share of each label's last rows held out, 0 < SHARE <= 0.5 (default ${D.holdout})
  --json                print one JSON object instead of the text report
  --epochs N            training epochs, 1..1000 (default ${D.epochs})
  --architecture A      softmax | original | mlp (default ${D.architecture})
  --features F          raw | magnitudes | magnitudes+phase-diff (default ${D.features})
  --batch-size N        rows per training step (default ${D.batchSize})
  --learning-rate X     Adam learning rate (default ${D.learningRate})
  --l2 X                L2 weight on the kernels (default ${D.l2})
  --early-stopping      stop on a blocked validation slice of the train part (default off)
  --seed N              seed for initial weights and batch order (default: drawn, and reported)
  --backend B           auto | gpu | node | cpu TensorFlow.js backend (default auto)

Exit codes: 0 ok, 1 bad arguments or unreadable file, 2 training failed.`

/** The validated command line. */
export interface EvalArgs {
  data: string
  json: boolean
  backend: BackendRequest
  options: TrainingOptions
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
  return { data: values.data, json: values.json ?? false, backend: backend as BackendRequest, options: given }
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

/** The report of one run. */
export function evalReport (data: string, input: TrainingSet, trained: TrainedModel, backend: string): EvalReport {
  const { meta } = trained
  if (!meta.evaluation) throw new Error('the training made no evaluation (no hold-out)')
  const stream = holdoutStream(trained, input)
  const smoothed = scoreSmoothed(sequencesByLabel(stream.angles, stream.probabilities), meta.labels, DEFAULT_SMOOTHER_OPTIONS)
  return {
    data,
    rows: input.angles.length,
    options: meta.options,
    backend,
    epochsTrained: meta.epochsTrained ?? meta.options.epochs,
    trainingSeconds: meta.trainingSeconds,
    ...meta.evaluation,
    smoothedAccuracy: smoothed.accuracy,
    smoothed: { ...DEFAULT_SMOOTHER_OPTIONS, openClosedAccuracy: smoothed.openClosedAccuracy }
  }
}

const f3 = (x: number): string => x.toFixed(3)

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
    `openClosed: accuracy ${f3(report.openClosed.accuracy)}, f1 (closed) ${f3(report.openClosed.f1)}`,
    `smoothed door state (window ${report.smoothed.window}, hold ${report.smoothed.hold}, as the server): accuracy ${f3(report.smoothedAccuracy)}, open/closed ${f3(report.smoothed.openClosedAccuracy)}`,
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
    report = evalReport(args.data, input, trained, info.backend)
  } catch (err) {
    progress.end()
    io.stderr.write(`doorsense eval: training failed: ${(err as Error).message}\n`)
    return 2
  }
  io.stdout.write(args.json ? JSON.stringify(report) + '\n' : formatReport(report))
  return 0
}
