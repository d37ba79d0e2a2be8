/**
 * Checkpoints the SQLite write-ahead log off the request path.
 *
 * SQLite's own autocheckpoint runs inside the commit that fills the log to
 * 1000 pages: it copies every page back into the database and fsyncs twice,
 * on the event loop, stalling the request that happened to commit and every
 * request queued behind it (50–300 ms at 64 connections). Here the app's
 * connection never checkpoints by itself (`wal_autocheckpoint = 0`); a worker
 * thread with a connection of its own runs a PASSIVE checkpoint every
 * `intervalMs` — the copying and the fsyncs happen on that thread, and a
 * passive checkpoint never blocks a writer.
 *
 * SQLite restarts the log (writes from its start again) only when a write
 * begins on a log that is copied completely, which a checkpoint on another
 * thread cannot promise while commits keep arriving: under sustained writes
 * the log would grow without end. So when the worker reports a log of
 * `resetFrames` or more, the app's connection checkpoints the remainder itself,
 * between requests (setImmediate) — only the pages committed while the worker
 * ran, but with two fsyncs on the event loop (tens of ms, more on a busy disk),
 * so it is kept rare: the default lets the log reach 64 MiB first — and the
 * next write restarts the log (truncated back to 64 MiB if it grew past).
 *
 * A server that has written less than `startAfterWalBytes` of log (a test, an
 * idle house) never starts the thread; if the thread cannot run, SQLite's own
 * checkpoints come back.
 */
import type { Database } from 'better-sqlite3'
import { statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** SQLite's default autocheckpoint size, restored if the worker fails. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000
/** Log size (pages of 4 KiB) at which the app's connection finishes a checkpoint itself; also the size a restarted log is cut back to. */
const RESET_FRAMES = 16384

/** Plain CommonJS: a worker started from source needs no TypeScript loader. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true })
db.pragma('synchronous = NORMAL')
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close()
    parentPort.close()
    return
  }
  const started = performance.now()
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)')
    parentPort.postMessage({ ms: performance.now() - started, log: result.log, checkpointed: result.checkpointed })
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) })
  }
})
`

export interface WalCheckpointerOptions {
  /** The database file the app's connection has open. */
  file: string
  /** A checkpoint every this many ms. */
  intervalMs: number
  /** Log frames (pages) at which the app's connection finishes a checkpoint itself (default 16384: 64 MiB). */
  resetFrames?: number
  /** The worker starts once the log file has reached this size. */
  startAfterWalBytes?: number
  /** Hears of a failed checkpoint or a worker that stopped; checkpoints go on (or fall back to SQLite's own). */
  onError?: (err: Error) => void
}

/** What the checkpointer has done, for metrics and tests. */
export interface CheckpointStats {
  /** Whether the timer runs. */
  running: boolean
  /** Whether the worker thread is up. */
  workerStarted: boolean
  /** Checkpoints the worker ran. */
  worker: number
  /** Checkpoints the app's connection finished itself. */
  main: number
  /** Longest the app's connection spent in one, ms. */
  mainMaxMs: number
  /** Log frames at the last worker checkpoint. */
  lastLog: number
}

interface WorkerReply {
  ms?: number
  log?: number
  checkpointed?: number
  error?: string
}

export class WalCheckpointer {
  readonly #db: Database
  readonly #file: string
  readonly #resetFrames: number
  readonly #startAfterWalBytes: number
  readonly #onError: (err: Error) => void
  readonly #timer: NodeJS.Timeout
  #worker: Worker | undefined
  #inFlight = false
  #stopped = false
  readonly #stats: CheckpointStats = { running: true, workerStarted: false, worker: 0, main: 0, mainMaxMs: 0, lastLog: 0 }

  constructor (db: Database, options: WalCheckpointerOptions) {
    this.#db = db
    this.#file = options.file
    this.#resetFrames = options.resetFrames ?? RESET_FRAMES
    this.#startAfterWalBytes = options.startAfterWalBytes ?? 1024 * 1024
    this.#onError = options.onError ?? (() => {})
    db.pragma('wal_autocheckpoint = 0')
    // a log that grew past the reset size during a burst is cut back when it restarts, not kept at its peak
    db.pragma(`journal_size_limit = ${this.#resetFrames * (db.pragma('page_size', { simple: true }) as number)}`)
    this.#timer = setInterval(() => this.#tick(), options.intervalMs)
    this.#timer.unref() // never the reason the process stays up
  }

  get stats (): CheckpointStats {
    return { ...this.#stats }
  }

  #tick (): void {
    if (this.#stopped || this.#inFlight) return
    if (!this.#worker) {
      if (walBytes(this.#file) < this.#startAfterWalBytes) return
      this.#worker = this.#startWorker()
      this.#stats.workerStarted = true
    }
    this.#inFlight = true
    this.#worker.postMessage('checkpoint')
  }

  #startWorker (): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), file: this.#file },
      stdout: false,
      stderr: false
    })
    worker.unref()
    worker.on('message', (reply: WorkerReply) => this.#onReply(reply))
    worker.on('error', (err) => this.#fallBack(err))
    worker.on('exit', (code) => { if (!this.#stopped) this.#fallBack(new Error(`the checkpoint worker exited (${code})`)) })
    return worker
  }

  #onReply (reply: WorkerReply): void {
    this.#inFlight = false
    if (reply.error !== undefined) {
      this.#onError(new Error(`WAL checkpoint failed: ${reply.error}`))
      return
    }
    this.#stats.worker++
    this.#stats.lastLog = reply.log ?? 0
    if ((reply.log ?? 0) >= this.#resetFrames) setImmediate(() => this.#finishOnMain())
  }

  /** The remainder on the app's connection, so the next write restarts the log. */
  #finishOnMain (): void {
    if (this.#stopped || !this.#db.open) return
    const started = performance.now()
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)')
    } catch (err) {
      this.#onError(err as Error)
      return
    }
    this.#stats.main++
    this.#stats.mainMaxMs = Math.max(this.#stats.mainMaxMs, performance.now() - started)
  }

  /** The worker is gone: SQLite checkpoints inside commits again, so the log stays bounded. */
  #fallBack (err: Error): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#stats.running = false
    clearInterval(this.#timer)
    this.#worker = undefined
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`)
    this.#onError(new Error(`WAL checkpoints fall back to SQLite's own, inside commits: ${err.message}`))
  }

  /** Stops the timer and closes the worker's connection (before the app's, so that one checkpoints last on close). */
  async stop (): Promise<void> {
    if (this.#stopped && !this.#worker) return
    this.#stopped = true
    this.#stats.running = false
    clearInterval(this.#timer)
    const worker = this.#worker
    this.#worker = undefined
    if (!worker) return
    // only its exit: a thread that fails as it starts (its database gone) has nothing left to close
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    worker.ref() // an unref'd thread would let the process end while its connection closes
    worker.postMessage('close')
    await exited
  }

  /** stop() without waiting, for a synchronous close. */
  terminate (): void {
    this.#stopped = true
    this.#stats.running = false
    clearInterval(this.#timer)
    this.#worker?.terminate().catch(() => {})
    this.#worker = undefined
  }
}

function walBytes (file: string): number {
  try {
    return statSync(`${file}-wal`).size
  } catch {
    return 0
  }
}
