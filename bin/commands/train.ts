/**
 * `doorsense train [--data FILE.csv] [--epochs N] [--server URL] [--json]`:
 * imports FILE (if given) into DATA_DIR's samples, trains on every stored CSI
 * sample and activates the new version — the server's code path (the model
 * handler, its worker and its version store), without listening. While a
 * server owns DATA_DIR it refuses (exit 3): `--server` has that server do the
 * import and the training instead (POST /training/post/import and
 * /training/post/train, its progress polled). Progress goes to stderr (a bar
 * on a terminal), the summary to stdout.
 * Exit codes: 0 trained and active, 1 bad arguments, configuration, file or
 * dataset (too few samples), 2 the training failed, 3 a live server owns
 * DATA_DIR (nothing written).
 */
import { createReadStream } from 'node:fs'
import { loadConfig, type Config } from '../../core/config.js'
import { Storage } from '../../core/storage.js'
import { chooseBackend } from '../../ml/backend.js'
import type { ServiceLog } from '../../core/logger.js'
import { ModelHandler } from '../../ml/model-handler.js'
import { SqliteSampleStore } from '../../ml/store/sample-store.js'
import { importSessionCsv } from '../../ml/store/session-import.js'
import type { Evaluation, TrainingOptions, TrainingProgress } from '../../schemas/model.js'
import { epochProgress, EXIT_SERVER_RUNNING, owningServer, parseOptions, processIo, serverRunningMessage, type CommandIo } from './command-line.js'
import { importThroughServer, ServerCallError, serverConnection, trainThroughServer, type ServerConnection } from './through-server.js'

const USAGE = `usage: doorsense train [--data FILE.csv] [--epochs N] [--server URL] [--json]

Trains a model on DATA_DIR's stored CSI samples (after importing FILE, a
session CSV, if given) and makes it the active version, as
POST /training/post/train does on a running server.

  --data FILE    import this session CSV first (all or nothing; content imported
                 already, e.g. by an earlier train --data FILE, is not imported again)
  --epochs N     training epochs, 1..1000 (default: the measured default)
  --server URL   have the running server at URL import and train (its samples, its
                 worker, its versions) instead of writing DATA_DIR; needs its admin
                 token (ADMIN_TOKEN, else DATA_DIR/admin-token)
  --json         print the summary as one JSON object

Only one process may write a DATA_DIR: while a live server owns it (its pid file
DATA_DIR/doorsense.pid names a running server) train refuses with exit 3 —
stop the server, or use --server. A pid file of a server that is gone is ignored.

Environment: DATA_DIR (default ./data), TF_BACKEND (auto|gpu|node|cpu), ADMIN_TOKEN.
Exit codes: 0 ok, 1 bad arguments, file or too few samples (or the server refused
them), 2 training failed, 3 a live server owns DATA_DIR.`

/** What `train` reports on stdout. */
export interface TrainSummary {
  version: string
  /** The version's folder (a local run). */
  dir?: string
  /** The server that trained it (--server). */
  server?: string
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
    values = parseOptions(argv, {
      data: { type: 'string' },
      epochs: { type: 'string' },
      server: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    })
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

  const env = io.env ?? process.env
  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    return fail(1, (err as Error).message)
  }
  if (values.server !== undefined) {
    let server: ServerConnection
    try {
      server = serverConnection(values.server, env, config.DATA_DIR)
    } catch (err) {
      return fail(1, (err as Error).message)
    }
    return await trainRemotely(server, values.data, options, values.json === true, io)
  }
  const owner = owningServer(config.DATA_DIR)
  if (owner) return fail(EXIT_SERVER_RUNNING, serverRunningMessage('train', config.DATA_DIR, owner, argv))

  let storage: Storage
  try {
    storage = new Storage(config.DATA_DIR)
  } catch (err) {
    return fail(1, (err as Error).message)
  }
  let handler: ModelHandler | undefined
  try {
    const samples = new SqliteSampleStore(storage)
    let imported: number | undefined
    if (values.data !== undefined) {
      try {
        imported = (await importSessionCsv(samples, createReadStream(values.data), { source: 'import' })).imported
        io.stderr.write(`imported ${imported} samples from ${values.data}\n`)
      } catch (err) {
        if (!isDuplicateImport(err)) return fail(1, `${values.data}: ${(err as Error).message}`)
        // training on the stored samples is what was asked: the file's are among them
        imported = 0
        io.stderr.write(`${values.data}: ${(err as Error).message}: training on the stored samples\n`)
      }
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

    const set = await samples.trainingSet('csi')
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
      dir: await handler.versionDir(version) as string,
      samples: set.features.length,
      backend: backend.info.backend,
      trainingSeconds: Math.round((handler.lastTrainingSeconds ?? 0) * 1000) / 1000
    }
    if (imported !== undefined) summary.imported = imported
    const evaluation = (await handler.evaluation(version))?.evaluation
    if (evaluation) summary.evaluation = evaluation
    io.stdout.write(values.json ? JSON.stringify(summary) + '\n' : formatSummary(summary))
    return 0
  } finally {
    await handler?.close()
    storage.close()
  }
}

/** `train --server`: the same steps and the same summary, done by the server. */
async function trainRemotely (server: ServerConnection, file: string | undefined, options: TrainingOptions, json: boolean, io: CommandIo): Promise<number> {
  const fail = (code: number, message: string) => {
    io.stderr.write(`doorsense train: ${message}\n`)
    return code
  }
  let imported: number | undefined
  if (file !== undefined) {
    try {
      imported = (await importThroughServer(server, file, null)).imported
      io.stderr.write(`imported ${imported} samples from ${file} into ${server.url}\n`)
    } catch (err) {
      if (!isDuplicateImport(err)) return fail(1, `${file}: ${(err as Error).message}`)
      imported = 0
      io.stderr.write(`${file}: ${(err as Error).message}: training on the stored samples\n`)
    }
  }
  const progress = progressReporter(io.stderr)
  let outcome
  try {
    outcome = await trainThroughServer(server, options, progress.onProgress)
  } catch (err) {
    progress.end()
    // a 400 is the input (too few samples, a bad option); a 409 or anything else is a run that could not happen
    return fail(err instanceof ServerCallError && err.status === 400 ? 1 : 2, (err as Error).message)
  }
  progress.end()
  const { accepted, active, failure, evaluation, backend } = outcome
  if (!active) return fail(2, failure?.message ?? `version ${accepted.version} did not become active`)
  const summary: TrainSummary = {
    version: accepted.version,
    server: server.url,
    samples: accepted.samples,
    backend,
    trainingSeconds: Math.round(active.trainingSeconds * 1000) / 1000
  }
  if (imported !== undefined) summary.imported = imported
  if (evaluation) summary.evaluation = evaluation.evaluation
  io.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary))
  return 0
}

/** Whether an import was refused because its content is stored already (locally, or the server's 409). */
function isDuplicateImport (err: unknown): boolean {
  const { code, status } = err as { code?: unknown, status?: unknown }
  return code === 'DS_DUPLICATE_IMPORT' || (err instanceof ServerCallError && status === 409)
}

/** The text summary. */
export function formatSummary (summary: TrainSummary): string {
  const lines = [
    `trained and activated ${summary.version} on ${summary.samples} samples in ${summary.trainingSeconds.toFixed(1)} s (${summary.backend} backend)`,
    summary.dir === undefined ? `on: ${summary.server} (GET /training/get/model/${summary.version}/model.json)` : `files: ${summary.dir}`
  ]
  const evaluation = summary.evaluation
  if (evaluation) {
    lines.push(`blocked hold-out (${evaluation.testRows} rows): accuracy ${evaluation.accuracy.toFixed(3)}, ` +
      `open/closed accuracy ${evaluation.openClosed.accuracy.toFixed(3)}, F1 (closed) ${evaluation.openClosed.f1.toFixed(3)}`)
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

/**
 * Epoch progress on stderr, from the handler's progress events or the
 * server's polled progress: each epoch once (the run's last report repeats
 * its last epoch with the final state; a poll may see an epoch twice, or the
 * last one only after the run has finished).
 */
function progressReporter (stderr: CommandIo['stderr']): { onProgress: (progress: TrainingProgress) => void, end: () => void } {
  const bar = epochProgress(stderr, ': ')
  let shown = 0
  return {
    onProgress (progress) {
      if (progress.epoch <= shown || progress.loss === undefined) return
      shown = progress.epoch
      const eta = progress.etaSeconds === undefined ? '' : `, ETA ${Math.ceil(progress.etaSeconds)} s`
      const holdOut = progress.validationAccuracy === undefined ? '' : `, hold-out ${progress.validationAccuracy.toFixed(3)}`
      bar.show(progress.epoch, progress.epochs, `loss ${progress.loss.toFixed(3)}, accuracy ${progress.accuracy?.toFixed(3)}${holdOut}${eta}`)
    },
    end: bar.end
  }
}
