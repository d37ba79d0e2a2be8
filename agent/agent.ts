/**
 * The Pi agent's logic: take CSI lines, keep the ones the server can read in
 * a bounded queue, hand them over in batches (by count or by time), retry
 * with backoff while the server is away, and keep the Pi on the live list.
 * No HTTP here: the calls go through an {@link AgentTransport}.
 *
 * Frames are forwarded raw, not as decoded features: the server stays the
 * one place that turns I/Q into features (and records which encoding it
 * got). The transport sends a batch of raw frames as their bytes (108 B a Pi
 * frame, 128 B a CSI_DATA line's array; transport.ts), or the lines as JSON
 * to a server that does not take bytes (~320 B a Pi line, ~480 B a CSI_DATA
 * line), against ~1.9 KB for the 106 features as JSON. The agent still
 * decodes each line once, with the server's own parser, to skip lines the
 * server would refuse (boot messages, torn serial lines).
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../domain/backoff.js'
import { parseFrame } from '../domain/frames.js'
import { MAX_FRAMES_PER_REQUEST } from '../schemas/rpi-servers.js'
import { FrameQueue } from './frame-queue.js'
import type { AgentTransport, Delivery } from './transport.js'

/** Tunables of the agent; every one has a default fit for a Pi at ~100 frames/s. */
export interface AgentOptions {
  transport: AgentTransport
  /** Most frames per request (1..4096, the route's limit). */
  batchSize?: number
  /** Longest a frame waits for its batch to fill, ms. */
  flushMs?: number
  /** Frames held while the server is away; the oldest are dropped beyond. */
  queueCapacity?: number
  /** Keep-alive period, ms (the server drops a Pi after STALE_AFTER_S = 30 s of silence). */
  keepAliveMs?: number
  backoff?: BackoffOptions
  /** Uniform random numbers in [0, 1) for the backoff jitter. */
  random?: () => number
  /** Receives the server's per-frame answers (inference mode), in input order. */
  onResults?: (results: readonly unknown[]) => void
  /** Diagnostics, one line each (stderr in the CLI). */
  log?: (message: string) => void
}

/** What the agent did, as counted so far. */
export interface AgentCounts {
  /** Non-blank lines read. */
  read: number
  /** Frames the server accepted (stored, or classified in inference mode). */
  sent: number
  /** Frames the server refused (its per-frame rejections, and whole batches answered with a 4xx). */
  rejected: number
  /** Frames dropped unsent: pushed out of a full queue, or still queued when the final flush gave up. */
  dropped: number
  /** Lines that are not a frame the server can read (never sent). */
  skipped: number
  /** Attempts the server did not take (unreachable, 5xx, 429); each put its batch back to be sent again. */
  retries: number
  /** Keep-alives the server answered. */
  keepAlives: number
  /** Keep-alives that failed. */
  keepAliveFailures: number
}

/** The counts, plus why lines were skipped (most frequent first). */
export interface AgentSummary extends AgentCounts {
  skippedReasons: Array<{ reason: string, count: number }>
  /** Frames still queued when the final flush gave up (included in `dropped`). */
  abandoned: number
}

export const DEFAULT_BATCH_SIZE = 100
export const DEFAULT_FLUSH_MS = 1000
export const DEFAULT_QUEUE_CAPACITY = 10_000
export const DEFAULT_KEEP_ALIVE_MS = 15_000

/** Skipped lines quoted in the log before the agent goes quiet about them. */
const SKIPPED_LINES_LOGGED = 3
/** Distinct skip reasons remembered for the summary. */
const SKIP_REASONS_KEPT = 5

/**
 * A batch as sent: its frames and the Idempotency-Key made when it was
 * formed. A retry sends the same frames with the same key, so the server
 * stores a batch whose answer was lost only once.
 */
interface Batch {
  frames: string[]
  key: string
}

/** Wakes the sender when frames arrive or input ends; one waiter at a time. */
class Doorbell {
  private waiter: (() => void) | undefined
  private timer: NodeJS.Timeout | undefined

  /** Resolves on {@link ring}, or after `ms` when given. */
  wait (ms?: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve
      if (ms !== undefined) this.timer = setTimeout(() => this.ring(), ms)
    })
  }

  ring (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }
}

/**
 * One agent run. Call {@link start}, {@link push} each line (awaiting
 * {@link room} when it returns a promise), then {@link finish}.
 */
export class Agent {
  private readonly transport: AgentTransport
  private readonly flushMs: number
  private readonly keepAliveMs: number
  private readonly backoff: BackoffOptions
  private readonly random: () => number
  private readonly onResults: ((results: readonly unknown[]) => void) | undefined
  private readonly log: (message: string) => void
  private readonly queue: FrameQueue<string>
  private readonly counts = { read: 0, sent: 0, rejected: 0, skipped: 0, retries: 0, keepAlives: 0, keepAliveFailures: 0 }
  private readonly skipReasons = new Map<string, number>()
  /** Shrinks after a 413 so the batches fit the server's body limit. */
  private batchLimit: number
  private readonly doorbell = new Doorbell()
  private readonly roomWaiters: Array<() => void> = []
  /** Aborted when the agent stops for good: cancels calls in flight and backoff sleeps. */
  private readonly halt = new AbortController()
  /** The batch the server did not take, kept whole with its key for the next attempt (its frames count against the queue's capacity). */
  private retrying: Batch | undefined
  private pumping: Promise<void> | undefined
  private keepAliveTimer: NodeJS.Timeout | undefined
  private keepAliveInFlight: Promise<void> | undefined
  private keepAliveDown = false
  /** When the oldest frame now waiting for a batch started waiting. */
  private waitingSince = 0
  /** Failed attempts in a row; > 0 while the server is away. */
  private failures = 0
  private outageStartedAt = 0
  private dropsLogged = false
  private ending = false
  private abandoned = 0
  private resultsSeen = 0
  private readonly refusalsLogged = new Set<number>()

  constructor (options: AgentOptions) {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_FRAMES_PER_REQUEST) {
      throw new RangeError(`batch size must be an integer 1..${MAX_FRAMES_PER_REQUEST}, got ${batchSize}`)
    }
    this.transport = options.transport
    this.queue = new FrameQueue(options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY)
    // a batch larger than the queue would never fill: the input would wait on a full queue for the flush timer
    this.batchLimit = Math.min(batchSize, this.queue.capacity)
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS
    this.keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS
    this.backoff = options.backoff ?? DEFAULT_BACKOFF
    this.random = options.random ?? Math.random
    this.onResults = options.onResults
    this.log = options.log ?? (() => {})
  }

  /** Sends the first keep-alive, starts the keep-alive timer and the sender. */
  start (): void {
    if (this.pumping) return
    this.keepAlive()
    // unref'd: the keep-alive alone must not hold the process open once input and queue are done
    this.keepAliveTimer = setInterval(() => this.keepAlive(), this.keepAliveMs).unref()
    this.pumping = this.pump()
  }

  /**
   * Takes one line: a frame the server can read is queued (the oldest queued
   * frame is dropped if the queue is full), anything else is skipped and counted.
   * Blank lines are ignored.
   */
  push (line: string): void {
    const frame = line.trim()
    if (frame === '') return
    this.counts.read++
    try {
      parseFrame(frame)
    } catch (err) {
      this.skip(frame, (err as Error).message)
      return
    }
    if (this.held >= this.queue.capacity && !this.dropsLogged) {
      this.dropsLogged = true
      this.log(`queue full (${this.queue.capacity} frames): dropping the oldest frames until the server takes them`)
    }
    // the batch waiting for its retry holds the oldest frames: it goes first, whole (a part of it would be another batch)
    if (this.retrying && this.held >= this.queue.capacity) this.dropRetrying()
    if (this.queue.length === 0) this.waitingSince = Date.now()
    this.queue.push(frame)
    // wake the sender only when it has something new to do: a first frame, or a full batch
    if (this.queue.length === 1 || this.queue.length >= this.batchLimit) this.doorbell.ring()
  }

  /**
   * Back-pressure for inputs that can wait (a file piped to stdin): while the
   * queue is full and the server is taking frames, resolves once there is room.
   * Returns undefined when the next push may go ahead, which is always the
   * case while the server is away: then the oldest frames are dropped instead,
   * since a live serial port cannot be paused.
   */
  room (): Promise<void> | undefined {
    if (!this.queue.full || this.failures > 0 || this.ending) return undefined
    return new Promise((resolve) => this.roomWaiters.push(resolve))
  }

  /** Frames waiting to be sent (not counting a batch in flight). */
  get queued (): number {
    return this.held
  }

  /** Frames held: the queue and a batch waiting for its retry. */
  private get held (): number {
    return this.queue.length + (this.retrying?.frames.length ?? 0)
  }

  private dropRetrying (): void {
    if (!this.retrying) return
    this.queue.dropped += this.retrying.frames.length
    this.retrying = undefined
  }

  /** The counts so far. */
  get stats (): AgentCounts {
    return { ...this.counts, dropped: this.queue.dropped }
  }

  /**
   * Input has ended: sends what is queued, waiting for the server up to
   * `deadlineMs`; frames still unsent then are dropped (and counted). Stops
   * the keep-alives and every timer.
   */
  async finish (deadlineMs = 30_000): Promise<AgentSummary> {
    this.ending = true
    clearInterval(this.keepAliveTimer)
    this.doorbell.ring()
    this.releaseRoomWaiters()
    const deadline = setTimeout(() => this.halt.abort(), deadlineMs)
    try {
      await this.pumping
      // a keep-alive under way is let finish (within the deadline): a short run still shows up as live
      await this.keepAliveInFlight
    } finally {
      clearTimeout(deadline)
      this.halt.abort()
      await this.keepAliveInFlight
    }
    return this.summary()
  }

  /** Counts and skip reasons (used by {@link finish}; callable at any time). */
  summary (): AgentSummary {
    const skippedReasons = [...this.skipReasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count)
    return { ...this.stats, skippedReasons, abandoned: this.abandoned }
  }

  private skip (line: string, reason: string): void {
    this.counts.skipped++
    if (this.counts.skipped <= SKIPPED_LINES_LOGGED) {
      const quoted = line.length > 60 ? `${line.slice(0, 57)}…` : line
      const more = this.counts.skipped === SKIPPED_LINES_LOGGED ? '; further skipped lines are only counted' : ''
      this.log(`line ${this.counts.read} skipped (${reason}): ${JSON.stringify(quoted)}${more}`)
    }
    if (this.skipReasons.has(reason) || this.skipReasons.size < SKIP_REASONS_KEPT) {
      this.skipReasons.set(reason, (this.skipReasons.get(reason) ?? 0) + 1)
    } else {
      this.skipReasons.set('other reasons', (this.skipReasons.get('other reasons') ?? 0) + 1)
    }
  }

  private keepAlive (): void {
    if (this.keepAliveInFlight || this.halt.signal.aborted) return
    this.keepAliveInFlight = this.transport.keepAlive(this.halt.signal).then(() => {
      this.counts.keepAlives++
      if (this.keepAliveDown) this.log('keep-alive answered again')
      this.keepAliveDown = false
    }, (err: Error) => {
      if (this.halt.signal.aborted) return
      this.counts.keepAliveFailures++
      if (!this.keepAliveDown) this.log(`keep-alive failed (${err.message}); retrying every ${this.keepAliveMs / 1000} s`)
      this.keepAliveDown = true
    }).finally(() => { this.keepAliveInFlight = undefined })
  }

  private releaseRoomWaiters (): void {
    for (const resolve of this.roomWaiters.splice(0)) resolve()
  }

  /** The sender: one batch in flight at a time, so batches arrive in input order. */
  private async pump (): Promise<void> {
    while (!this.halt.signal.aborted) {
      if (this.retrying) {
        const batch = this.retrying
        this.retrying = undefined
        await this.deliver(batch)
        continue
      }
      if (this.queue.length === 0) {
        if (this.ending) return
        await this.doorbell.wait()
        continue
      }
      if (this.queue.length < this.batchLimit && !this.ending) {
        const due = this.waitingSince + this.flushMs - Date.now()
        if (due > 0) {
          await this.doorbell.wait(due)
          continue
        }
      }
      const batch = { frames: this.queue.take(this.batchLimit), key: randomUUID() }
      this.waitingSince = Date.now()
      this.releaseRoomWaiters()
      await this.deliver(batch)
    }
    // stopped before the queue emptied: the final flush ran out of time
    this.abandoned = this.held
    this.dropRetrying()
    this.queue.dropped += this.queue.take(this.queue.length).length
  }

  private async deliver (sent: Batch): Promise<void> {
    const batch = sent.frames
    const outcome: Delivery = await this.transport.send(batch, this.halt.signal, sent.key)
    switch (outcome.kind) {
      case 'stored':
        this.recovered()
        this.counts.sent += outcome.accepted
        this.counts.rejected += outcome.rejected.length
        for (const { index, reason } of outcome.rejected.slice(0, 3)) this.log(`server rejected frame ${this.resultsSeen + index}: ${reason}`)
        if (outcome.results) this.onResults?.(outcome.results)
        this.resultsSeen += batch.length
        return
      case 'refused':
        // the same batch would be refused again: count it and move on
        this.recovered()
        this.refuse(batch, outcome.status, outcome.reason)
        return
      case 'too-large':
        if (batch.length === 1) {
          this.refuse(batch, 413, outcome.reason)
          return
        }
        this.batchLimit = Math.ceil(batch.length / 2)
        this.log(`server refused a batch of ${batch.length} frames as too large: sending at most ${this.batchLimit} per request`)
        // nothing of it was stored: its frames form new batches, with new keys
        this.queue.unshift(batch)
        return
      case 'retry':
        await this.retryLater(sent, outcome.reason, outcome.retryAfterMs)
    }
  }

  /** Counts a batch the server will never take; in inference mode each of its frames still gets an answer line. */
  private refuse (batch: string[], status: number, reason: string): void {
    this.counts.rejected += batch.length
    this.resultsSeen += batch.length
    // a wrong token refuses every batch: say it once per status, not once per batch
    if (!this.refusalsLogged.has(status)) {
      this.refusalsLogged.add(status)
      this.log(`server refused a batch of ${batch.length} frames (${reason}); further ${status} refusals are only counted`)
    }
    this.onResults?.(batch.map(() => ({ error: reason })))
  }

  /**
   * The server did not take `batch` (or took it and the answer was lost): it
   * is kept whole, with its key, to be sent again first after the wait.
   */
  private async retryLater (batch: Batch, reason: string, retryAfterMs = 0): Promise<void> {
    this.hold(batch)
    if (this.halt.signal.aborted) return
    if (this.failures === 0) this.outageStartedAt = Date.now()
    const delay = Math.max(retryAfterMs, backoffDelay(this.failures, this.backoff, this.random))
    if (this.failures === 0) {
      this.log(`server did not take a batch (${reason}): retrying with backoff; up to ${this.queue.capacity} frames wait meanwhile`)
    }
    this.failures++
    this.counts.retries++
    // while the server is away, inputs must not wait for room (see room())
    this.releaseRoomWaiters()
    try {
      await sleep(delay, undefined, { signal: this.halt.signal })
    } catch {
      // halted: pump() sees the aborted signal and stops
    }
  }

  /** Keeps `batch` for its retry if it fits beside the queue; else it is the oldest and is dropped, as a full queue drops. */
  private hold (batch: Batch): void {
    if (this.queue.length + batch.frames.length > this.queue.capacity) {
      this.queue.dropped += batch.frames.length
      return
    }
    this.retrying = batch
  }

  private recovered (): void {
    // the server answers again: a keep-alive that failed need not wait for the next period
    if (this.keepAliveDown) this.keepAlive()
    if (this.failures === 0) return
    this.log(`server took frames again after ${this.failures} failed attempts (${((Date.now() - this.outageStartedAt) / 1000).toFixed(1)} s)`)
    this.failures = 0
    this.dropsLogged = false
    // let the live list see this Pi now rather than at the next period
    this.keepAlive()
  }
}
