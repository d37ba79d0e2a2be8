/**
 * Starts a training run in a worker thread (pure-JS tfjs) or a child process
 * (native tfjs, which misbehaves in worker threads), so the server's event
 * loop never runs an epoch. The run reports its start and each epoch, and
 * resolves with the trained model; stop() ends it at once.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { EpochReport, StorableModel, TrainedModel } from '../model-types.js'
import { PROCESS_FLAG, type TrainingJob, type WorkerMessage } from './worker.js'

/** Where a run executes. */
export type RunnerMode = 'thread' | 'process'

/** Callbacks of a run. */
export interface RunHandlers {
  /** The worker has loaded tfjs and begins to train. */
  onStarted?: (backend: string) => void
  onEpoch?: (report: EpochReport) => void
}

/** A training run that has been launched. */
export interface TrainingRun<M extends StorableModel = TrainedModel> {
  /** Resolves once the worker has loaded and begun; rejects if it failed before that. */
  readonly started: Promise<void>
  /** The trained model; rejects with the worker's error (or when stopped). */
  readonly result: Promise<M>
  /** Ends the worker now; `result` rejects with a "stopped" error. */
  stop: () => Promise<void>
}

/** Thrown by `result` when the run was stopped from outside. */
export class TrainingStoppedError extends Error {
  override name = 'TrainingStoppedError'
}

// the worker is the .ts source under tsx, the .js file if this was compiled
const WORKER_FILE = new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url)
const UNDER_TSX = WORKER_FILE.pathname.endsWith('.ts')

/** Launches `job` in `mode`. */
export function startTrainingRun<M extends StorableModel = TrainedModel> (job: TrainingJob, mode: RunnerMode, handlers: RunHandlers = {}): TrainingRun<M> {
  let settled = false
  let stopped = false
  let markStarted!: () => void
  let failStart!: (err: Error) => void
  let resolveResult!: (model: M) => void
  let rejectResult!: (err: Error) => void
  const started = new Promise<void>((resolve, reject) => { markStarted = resolve; failStart = reject })
  const result = new Promise<M>((resolve, reject) => { resolveResult = resolve; rejectResult = reject })
  // a caller that only awaits `result` must not see an unhandled `started` rejection
  started.catch(() => {})

  const fail = (err: Error) => {
    if (settled) return
    settled = true
    failStart(err)
    rejectResult(err)
  }
  const onMessage = (message: WorkerMessage) => {
    if (settled) return
    switch (message.type) {
      case 'started':
        markStarted()
        handlers.onStarted?.(message.backend)
        break
      case 'epoch':
        handlers.onEpoch?.(message.report)
        break
      case 'done':
        settled = true
        markStarted()
        resolveResult(message.model as M)
        end().catch(() => {})
        break
      case 'failed':
        fail(new Error(message.message))
        end().catch(() => {})
        break
    }
  }
  const onExit = (code: number | null, signal?: NodeJS.Signals | null) => {
    if (stopped) fail(new TrainingStoppedError('training stopped: the model handler closed while it ran'))
    else fail(new Error(`training worker exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}) before it sent a model`))
  }

  let end: () => Promise<void>
  if (mode === 'thread') {
    const worker = launchThread(job)
    worker.on('message', onMessage)
    worker.on('error', (err) => fail(err))
    const exited = new Promise<void>((resolve) => worker.once('exit', (code) => { onExit(code); resolve() }))
    end = async () => {
      await worker.terminate()
      await exited
    }
  } else {
    const child = launchProcess()
    child.on('message', onMessage)
    child.on('error', (err) => fail(err))
    const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => { onExit(code, signal); resolve() }))
    child.send(job)
    end = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    }
  }

  return {
    started,
    result,
    stop: async () => {
      stopped = true
      await end()
    }
  }
}

/**
 * A worker thread running worker.ts. Under tsx the thread must register
 * the TypeScript loader itself: on Node 20 the inherited `--import tsx` does
 * not apply to worker threads, so the entry is a small script that loads the
 * worker through tsx's API.
 */
function launchThread (job: TrainingJob): Worker {
  const options = {
    workerData: { trainingJob: job },
    transferList: 'set' in job ? [job.set.features.buffer as ArrayBuffer] : [],
    // the worker's own console output goes to this process's streams
    stdout: false,
    stderr: false
  }
  if (!UNDER_TSX) return new Worker(WORKER_FILE, options)
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const entry = `import(${JSON.stringify(tsxApi)}).then((tsx) => tsx.tsImport(${JSON.stringify(WORKER_FILE.href)}, ${JSON.stringify(import.meta.url)}))`
  return new Worker(entry, { ...options, eval: true })
}

/** A child process running worker.ts (native backends). Its output goes to stderr, never to stdout. */
function launchProcess (): ChildProcess {
  const execArgv = UNDER_TSX ? ['--import', import.meta.resolve('tsx')] : []
  return fork(fileURLToPath(WORKER_FILE), [PROCESS_FLAG], {
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 2, 2, 'ipc']
  })
}
