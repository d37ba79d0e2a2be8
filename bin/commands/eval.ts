/**
 * `doorsense eval --data FILE.csv [--holdout 0.2] [--json] [--shifted OTHER] [training options]`:
 * parses the flags, reads FILE (and OTHER), runs ml/training/session-evaluation.ts
 * evaluateSession (the global per-frame model and the windowed door model
 * trained on each label's first rows, reported on the held-out tails, with the
 * ajar self-check and, with --shifted, the door model's novelty AUC) and
 * prints its report. Nothing is stored. Results go to stdout (with --json
 * exactly one JSON object), progress to stderr (a bar on a terminal, a few
 * lines otherwise).
 * Exit codes: 0 ok, 1 bad arguments or an unreadable/invalid file, 2 training failed.
 */
import { readFileSync } from 'node:fs'
import { readSessionCsv } from '../../domain/session-csv.js'
import { chooseBackend, type BackendRequest, type ChosenBackend } from '../../ml/backend.js'
import type { ShiftedSet } from '../../ml/door/evaluation.js'
import { DEFAULT_DOOR_TRAINING, resolveDoorTraining } from '../../ml/door/train.js'
import { DEFAULT_TRAINING_OPTIONS, resolveTrainingOptions } from '../../ml/global/trainer.js'
import type { EpochReport } from '../../ml/model-types.js'
import type { TrainingSet } from '../../ml/training-set.js'
import { doorTrainingOf, evaluateSession, shiftedSetOf, type EvalReport } from '../../ml/training/session-evaluation.js'
import type { TrainingOptions } from '../../schemas/model.js'
import { epochProgress, parseOptions, processIo, UsageError, type CommandIo } from './command-line.js'

export type { EvalReport } from '../../ml/training/session-evaluation.js'

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
    const message = (err as Error).message
    throw new UsageError(message.replace(/^door training option epochs/, '--door-epochs').replace(/^door training option seed/, '--seed (door model)'))
  }
  const args: EvalArgs = { data: values.data, json: values.json ?? false, backend: backend as BackendRequest, options: given }
  if (values.shifted !== undefined) args.shifted = values.shifted
  if (doorEpochs !== undefined) args.doorEpochs = doorEpochs
  return args
}

/**
 * Reads --shifted OTHER (ml/training/session-evaluation.ts shiftedSetOf: a
 * session CSV, or one frame per line).
 * @throws {UsageError} naming the file and the lines that are wrong
 */
export function readShifted (file: string, window: number): ShiftedSet {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--shifted: cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return shiftedSetOf(file, text, window)
  } catch (err) {
    throw new UsageError(`--shifted: ${(err as Error).message}`)
  }
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
    `door state (windowed door model as the server runs a calibrated door, ${setting}; each label's test tail replayed): ` +
      `accuracy ${f3(d.accuracy)}, openClosed: accuracy ${f3(d.openClosed.accuracy)}, balanced accuracy ${f3(d.openClosed.balancedAccuracy)}, ` +
      `closed F1 ${f3(d.openClosed.closedF1)}; latency ${d.latencyFrames} frames; ${m.frames ?? 0} frames counted, ${m.unknownFrames ?? 0} unknown`
  ]
  if (m.perWindow) {
    lines.push(`  per window (${m.perWindow.windows} windows): accuracy ${f3(m.perWindow.accuracy)}, ` +
      `openClosed: accuracy ${f3(m.perWindow.openClosed.accuracy)}, balanced accuracy ${f3(m.perWindow.openClosed.balancedAccuracy)}, ` +
      `closed F1 ${f3(m.perWindow.openClosed.closedF1)}; trained in ${(m.trainingSeconds ?? 0).toFixed(1)} s`)
  }
  if (d.confusion) {
    const [closedRow, openRow] = d.confusion
    lines.push(`  door state confusion (rows = true, columns = reported closed / open / unknown): closed ${closedRow.join(' / ')}; open ${openRow.join(' / ')}`)
  }
  if (m.perAngle) {
    const byAngle = m.perAngle.map((r) => `${r.angle}° ${r.closed}/${r.open}/${r.unknown}`).join(', ')
    lines.push(`  door state by angle (closed / open / unknown frames): ${byAngle}`)
  }
  if (m.selfCheck) {
    const checks = m.selfCheck.checks.map((c) => `${c.angle}° ${c.model} read closed ${percent(c.closedShare)}${c.passed ? '' : ' (fails)'}`).join('; ')
    const verdict = m.selfCheck.passed ? 'passes' : 'FAILS: this recording cannot tell ajar from closed'
    lines.push(`ajar self-check (ajar ${m.selfCheck.ajarAngle}°, at most ${percent(m.selfCheck.limit)} may read closed): ${verdict}: ${checks}`)
  }
  if (m.heldOutNovelShare !== undefined) lines.push(`novelty: the door's own held-out windows flagged ${percent(m.heldOutNovelShare)}`)
  if (report.novelty && m.novelty) {
    lines.push(`novelty: AUC ${f3(report.novelty.auc)} (${m.novelty.shifted}: ${m.novelty.windows} windows, ` +
      `${percent(m.novelty.novelShare)} flagged novel; held-out windows flagged ${percent(m.novelty.heldOutNovelShare)})`)
  }
  return lines
}

/** The text report: summary, per-class table, confusion matrix. */
export function formatReport (report: EvalReport): string {
  const o = report.options
  const cells = (values: Array<string | number>, width: number) => values.map((value) => String(value).padStart(width)).join(' ')
  const angleWidth = Math.max(6, ...report.labels.map((label) => `${label}°`.length + 1))
  const lines = [
    `data: ${report.data} — ${report.rows} rows, ${report.labels.length} labels; ` +
      `blocked hold-out ${o.holdout} of each label (${report.trainRows} train rows, ${report.testRows} test rows)`,
    `model: ${o.architecture} on ${o.features}, ${report.epochsTrained}${o.earlyStopping ? ` of ${o.epochs} (early stopping)` : ''} epochs, ` +
      `batch ${o.batchSize}, learning rate ${o.learningRate}, L2 ${o.l2}, seed ${o.seed}; ${report.backend} backend, ${report.trainingSeconds.toFixed(1)} s`,
    '',
    `accuracy: ${f3(report.accuracy)} (${report.labels.length} classes)`,
    `openClosed: accuracy ${f3(report.openClosed.accuracy)}, balanced accuracy ${f3(report.openClosed.balancedAccuracy)}, ` +
      `closed F1 ${f3(report.openClosed.closedF1)} (per frame)`,
    `smoothed door state (window ${report.smoothed.window}, hold ${report.smoothed.hold}, the server's vote smoother for the global model): ` +
      `accuracy ${f3(report.smoothedAccuracy)}, open/closed ${f3(report.smoothed.openClosedAccuracy)}`,
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
      const validation = report.validationAccuracy === undefined ? '' : ` ${watched} ${f3(report.validationAccuracy)}`
      bar.show(report.epoch, report.epochs, `loss ${report.loss.toFixed(3)} train acc ${f3(report.accuracy)}${validation}`)
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
    io.stderr.write(`doorsense eval: ${args.data} is not a valid session CSV (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
      `${shown.join('\n')}${problems.length > 5 ? '\n  …' : ''}\n`)
    return 1
  }
  const input: TrainingSet = { kind: 'csi', features: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
  let shifted: ShiftedSet | undefined
  if (args.shifted !== undefined) {
    try {
      shifted = readShifted(args.shifted, doorTrainingOf(args, DEFAULT_DOOR_TRAINING.seed).window)
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
  // a line of progress ends the epoch bar first
  const say = (line: string) => {
    progress.end()
    io.stderr.write(line + '\n')
  }
  let report: EvalReport
  try {
    report = await evaluateSession(tf, input, {
      data: args.data,
      options: args.options,
      doorEpochs: args.doorEpochs,
      shifted,
      backend: info.backend,
      onEpoch: progress.onEpoch,
      say
    })
  } catch (err) {
    progress.end()
    io.stderr.write(`doorsense eval: training failed: ${(err as Error).message}\n`)
    return 2
  }
  io.stdout.write(args.json ? JSON.stringify(report) + '\n' : formatReport(report))
  return 0
}
