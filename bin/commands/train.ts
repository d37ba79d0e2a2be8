/**
 * `doorsense train [--data FILE.csv] [--epochs N] [--json]`: imports FILE (if
 * given) into DATA_DIR's samples, trains on every stored CSI sample and
 * activates the new version — the server's code path (the model handler, its
 * worker and its version store), without listening. Progress goes to stderr
 * (a bar on a terminal), the summary to stdout. A server running on the same
 * DATA_DIR sees the new version after its next restart.
 * Exit codes: 0 trained and active, 1 bad arguments, configuration, file or
 * dataset (too few samples), 2 the training failed.
 */
import { createReadStream } from 'node:fs'
import { loadConfig, type Config } from '../../core/config.js'
import { Storage } from '../../core/storage.js'
import { chooseBackend } from '../../ml/backend.js'
import type { ServiceLog } from '../../core/logger.js'
import { ModelHandler } from '../../ml/model-handler.js'
import { SampleStore } from '../../ml/sample-store.js'
import { importSessionCsv } from '../../ml/session-import.js'
import type { Evaluation, TrainingOptions, TrainingProgress } from '../../schemas/model.js'
import { epochProgress, parseOptions, processIo, type CommandIo } from './command-line.js'

const USAGE = `usage: doorsense train [--data FILE.csv] [--epochs N] [--json]

Trains a model on DATA_DIR's stored CSI samples (after importing FILE, a
session CSV, if given) and makes it the active version, as
POST /training/post/train does on a running server.

  --data FILE    import this session CSV first (all or nothing)
  --epochs N     training epochs, 1..1000 (default: the measured default)
  --json         print the summary as one JSON object

Environment: DATA_DIR (default ./data), TF_BACKEND (auto|gpu|node|cpu).
Exit codes: 0 ok, 1 bad arguments, file or too few samples, 2 training failed.`

/** What `train` reports on stdout. */
export interface TrainSummary {
  version: string
  dir: string
  samples: number
  imported?: number
  backend: string
  trainingSeconds: number
  evaluation?: Evaluation
}

/** Runs `train`; resolves to the exit code. */
export async function run (argv: string[], io: CommandIo = processIo): Promise<number> {
  const fail = (code: number, message: string) => {
    io.stderr.write(`doorsense train: ${message}\n`)
    return code
  }
  let values
  try {
    values = parseOptions(argv, { data: { type: 'string' }, epochs: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } })
  } catch (err) {
    return fail(1, `${(err as Error).message}\n\n${USAGE}`)
  }
  if (values.help) {
    io.stdout.write(USAGE + '\n')
    return 0
  }
  const options: TrainingOptions = {}
  if (values.epochs !== undefined) {
    const epochs = Number(values.epochs)
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 1000) return fail(1, `--epochs must be an integer 1..1000, got ${JSON.stringify(values.epochs)}`)
    options.epochs = epochs
  }

  let config: Config
  let storage: Storage
  try {
    config = loadConfig(io.env ?? process.env)
    storage = new Storage(config.DATA_DIR)
  } catch (err) {
    return fail(1, (err as Error).message)
  }
  let handler: ModelHandler | undefined
  try {
    const samples = new SampleStore(storage)
    let imported: number | undefined
    if (values.data !== undefined) {
      try {
        imported = (await importSessionCsv(samples, createReadStream(values.data), { source: 'import' })).imported
      } catch (err) {
        return fail(1, `${values.data}: ${(err as Error).message}`)
      }
      io.stderr.write(`imported ${imported} samples from ${values.data}\n`)
    }
    let backend
    try {
      backend = await chooseBackend(config.TF_BACKEND)
    } catch (err) {
      return fail(1, (err as Error).message)
    }
    handler = await ModelHandler.open({ storage, dataDir: config.DATA_DIR, backend, log: stderrLog(io.stderr) })
    const progress = progressReporter(io.stderr)
    handler.on('progress', progress.onProgress)

    const set = samples.trainingSet('csi')
    io.stderr.write(`training on ${set.features.length} samples (${backend.info.backend} backend)…\n`)
    let version: string
    try {
      ({ version } = await handler.startTraining(set, options))
    } catch (err) {
      progress.end()
      return fail(exitCodeOf(err), (err as Error).message)
    }
    await handler.waitForTraining()
    progress.end()
    if (handler.state !== 'FINISHED_TRAINING' || handler.active?.version !== version) {
      return fail(2, handler.lastFailure?.message ?? `training ended in state ${handler.state}`)
    }
    const summary: TrainSummary = {
      version,
      dir: handler.versionDir(version) as string,
      samples: set.features.length,
      backend: backend.info.backend,
      trainingSeconds: Math.round((handler.lastTrainingSeconds ?? 0) * 1000) / 1000
    }
    if (imported !== undefined) summary.imported = imported
    const evaluation = handler.evaluation(version)?.evaluation
    if (evaluation) summary.evaluation = evaluation
    io.stdout.write(values.json ? JSON.stringify(summary) + '\n' : formatSummary(summary))
    return 0
  } finally {
    await handler?.close()
    storage.close()
  }
}

/** The text summary. */
export function formatSummary (summary: TrainSummary): string {
  const lines = [
    `trained and activated ${summary.version} on ${summary.samples} samples in ${summary.trainingSeconds.toFixed(1)} s (${summary.backend} backend)`,
    `files: ${summary.dir}`
  ]
  const evaluation = summary.evaluation
  if (evaluation) {
    lines.push(`blocked hold-out (${evaluation.testRows} rows): accuracy ${evaluation.accuracy.toFixed(3)}, open/closed accuracy ${evaluation.openClosed.accuracy.toFixed(3)}, F1 (closed) ${evaluation.openClosed.f1.toFixed(3)}`)
  }
  return lines.join('\n') + '\n'
}

/** Error codes that mean "fix your input" (exit 1); any other refusal is a training that could not run (exit 2). */
const INPUT_ERROR_CODES = new Set(['DS_BAD_REQUEST', 'DS_TOO_FEW_SAMPLES'])

/** The exit code for an error the handler threw, from its code. */
export function exitCodeOf (err: unknown): 1 | 2 {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && INPUT_ERROR_CODES.has(code) ? 1 : 2
}

/** The handler's warnings and errors as plain lines on stderr; its info is the progress shown anyway. */
function stderrLog (stderr: CommandIo['stderr']): ServiceLog {
  const line = (level: string) => (object: object, message: string) => {
    const detail = (object as { message?: string }).message ?? (object as { err?: Error }).err?.message
    stderr.write(`doorsense train: ${level}: ${message}${detail ? `: ${detail}` : ''}\n`)
  }
  return { debug: () => {}, info: () => {}, warn: line('warning'), error: line('error') }
}

/** Epoch progress on stderr, from the handler's progress events. */
function progressReporter (stderr: CommandIo['stderr']): { onProgress: (progress: TrainingProgress) => void, end: () => void } {
  const bar = epochProgress(stderr, ': ')
  return {
    onProgress (progress) {
      if (progress.epoch === 0 || progress.loss === undefined || progress.state !== 'TRAINING_IN_PROGRESS') return
      const eta = progress.etaSeconds === undefined ? '' : `, ETA ${Math.ceil(progress.etaSeconds)} s`
      bar.show(progress.epoch, progress.epochs, `loss ${progress.loss.toFixed(3)}, accuracy ${progress.accuracy?.toFixed(3)}${progress.validationAccuracy === undefined ? '' : `, hold-out ${progress.validationAccuracy.toFixed(3)}`}${eta}`)
    },
    end: bar.end
  }
}
