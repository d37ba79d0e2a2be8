/**
 * The training run, off the server's event loop: loaded as a worker thread
 * (pure-JS tfjs; tfjs-node misbehaves in worker threads) or as a child process
 * (the native backends). It receives one {@link TrainingJob}, reports each
 * epoch, and sends back the trained model's artifacts; the main thread writes
 * the version.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type * as tfjs from '@tensorflow/tfjs'
import type { ModelKind, TrainingOptions } from '../../schemas/model.js'
import { loadBackend, type BackendName } from '../backend.js'
import { joinWeightData } from '../store/model-store.js'
import { trainModel } from '../global/trainer.js'
import type { EpochReport, StorableModel } from '../model-types.js'
import { calibrateDoorModel, type CalibrationGate } from '../door/calibration.js'
import Database from 'better-sqlite3'
import pg from 'pg'
import { readSqliteTrainingSet } from '../store/sample-store.js'
import { readPostgresTrainingSet } from '../store/sample-store-postgres.js'
import { unpackTrainingSet, type PackedTrainingSet, type TrainingSet } from '../training-set.js'

/** argv flag that makes a child process run a job (so importing this file elsewhere does nothing). */
export const PROCESS_FLAG = '--doorsense-training-worker'

/**
 * Everything a run needs; the rows travel packed in one buffer (cheap to
 * transfer). `model` says what is trained: the global per-frame model, or
 * one door's windowed model (trained and evaluated on its calibration).
 */
export type TrainingJob =
  | { model?: 'frame', backend: BackendName, set: PackedTrainingSet, options?: TrainingOptions }
  | { model?: 'frame', backend: BackendName, source: { kind: ModelKind, database: string }, options?: TrainingOptions }
  | { model: 'door', backend: BackendName, set: PackedTrainingSet, options?: DoorTrainingRequest, gate?: CalibrationGate }

/** A door model's options as a job carries them (defaults fill the rest). */
export type DoorTrainingRequest = Parameters<typeof calibrateDoorModel>[2]

/** What the worker tells the main thread. */
export type WorkerMessage =
  | { type: 'started', backend: string }
  | { type: 'epoch', report: EpochReport }
  | { type: 'done', model: StorableModel }
  | { type: 'failed', message: string }

/**
 * Runs one job, reporting through `send` (awaited for the last message, so it
 * is out before the caller exits). Never throws: failures become a `failed` message.
 */
export async function runJob (job: TrainingJob, send: (message: WorkerMessage) => void | Promise<void>): Promise<void> {
  try {
    const { tf } = await loadBackend(job.backend)
    send({ type: 'started', backend: tf.getBackend() })
    const model: StorableModel = job.model === 'door'
      ? await calibrateDoorModel(tf, frameSet(unpackTrainingSet(job.set)), job.options, { gate: job.gate })
      : await trainModel(
        tf,
        'source' in job ? await readStoredSamples(job.source) : unpackTrainingSet(job.set),
        job.options,
        (report) => { send({ type: 'epoch', report }) }
      )
    // one plain ArrayBuffer crosses the thread/process boundary, whatever tfjs produced
    const weights = joinWeightData(model.artifacts.weightData)
    const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer
    const artifacts: tfjs.io.ModelArtifacts = { ...model.artifacts, weightData }
    await send({ type: 'done', model: { artifacts, meta: model.meta } })
  } catch (err) {
    await send({ type: 'failed', message: err instanceof Error ? err.message : String(err) })
  }
}

function frameSet (set: TrainingSet): { frames: TrainingSet['features'], angles: TrainingSet['angles'] } {
  return { frames: set.features, angles: set.angles }
}

/**
 * The stored samples of a kind, read on a connection of the run's own, off
 * the server's event loop: `database` is the SQLite file (opened read-only)
 * or, in a cluster, the PostgreSQL URL.
 */
async function readStoredSamples (source: { kind: ModelKind, database: string }): Promise<TrainingSet> {
  if (/^postgres(ql)?:/.test(source.database)) {
    const client = new pg.Client({ connectionString: source.database, application_name: 'doorsense training' })
    await client.connect()
    try {
      return await readPostgresTrainingSet(client, source.kind)
    } finally {
      await client.end()
    }
  }
  const db = new Database(source.database, { readonly: true, fileMustExist: true })
  try {
    return readSqliteTrainingSet(db, source.kind)
  } finally {
    db.close()
  }
}

const threadJob = (workerData as { trainingJob?: TrainingJob } | null)?.trainingJob
if (parentPort && threadJob) {
  const port = parentPort
  await runJob(threadJob, (message) => port.postMessage(message))
} else if (process.send && process.argv.includes(PROCESS_FLAG)) {
  const sendToParent = (message: WorkerMessage) => new Promise<void>((resolve) => {
    process.send?.(message, undefined, {}, () => resolve())
  })
  process.once('message', (job: TrainingJob) => {
    runJob(job, sendToParent).finally(() => process.disconnect())
  })
}
