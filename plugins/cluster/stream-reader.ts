/**
 * An ephemeral pull consumer read in stream order, kept alive: the frame
 * partitions' consumers and the door board's watch are both one.
 *
 * It is made with the manager API rather than the client's ordered consumer:
 * that one sets `filter_subjects`, which NATS 2.9 refuses (2.10+). No acks,
 * memory storage for its state, and an inactivity threshold so the consumer of
 * an instance that died vanishes by itself. A consumer lost under it (deleted
 * by hand, or by a NATS restart) ends the iteration; another is made that
 * starts after the last message read, so nothing is skipped or read twice.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, ReplayPolicy, type ConsumerConfig, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { isApiError, type ClusterConnection } from './connection.js'

export interface StreamReaderOptions {
  stream: string
  /** One subject filter (NATS 2.9 takes one). */
  filterSubject: string
  /** The consumer's name starts with it (what an operator sees in `nats consumer ls`). */
  namePrefix: string
  /** Where the first consumer starts: at a time (epoch ms), or at each subject's last message (a KV bucket's current values). */
  start: { timeMs: number } | 'last-per-subject'
  /**
   * Each message, in stream order; `initial` while it is one of the messages
   * the first consumer had to deliver when it was made (until that many were
   * read, or the reader caught up: a message may be gone by the time it would
   * be read). What it throws goes to onError.
   */
  onMessage: (message: JsMsg, initial: boolean) => void
  onError: (err: unknown) => void
  /** How long the server keeps the consumer once nobody pulls from it. Default 5000. */
  inactiveMs?: number
}

/** The longest wait between two attempts to make a lost consumer again. */
const MAX_RETRY_MS = 5000

/** See the module's doc. */
export class StreamReader {
  /** The messages the first consumer had to deliver when it was made. */
  initialPending = 0
  /** Resolves once those were read (or the reader stopped). */
  readonly initialRead: Promise<void>
  #initialReadResolve: () => void = () => {}
  #initialDone = false
  #read = 0
  readonly #conn: ClusterConnection
  readonly #options: StreamReaderOptions
  /** Cuts the wait before another attempt short when stopping. */
  readonly #abort = new AbortController()
  #name = ''
  #messages: ConsumerMessages | undefined
  #running: Promise<void> | undefined
  #stopping = false
  #stopped: Promise<void> | undefined
  #lastSeq = 0
  #pending = 0

  private constructor (conn: ClusterConnection, options: StreamReaderOptions) {
    this.#conn = conn
    this.#options = options
    this.initialRead = new Promise((resolve) => { this.#initialReadResolve = resolve })
  }

  /**
   * Makes the consumer and starts reading.
   * @throws when the consumer cannot be made (no stream, NATS away)
   */
  static async start (conn: ClusterConnection, options: StreamReaderOptions): Promise<StreamReader> {
    const reader = new StreamReader(conn, options)
    await reader.#open()
    reader.initialPending = reader.#pending
    if (reader.initialPending === 0) reader.#caughtUp()
    reader.#running = reader.#run()
    return reader
  }

  /** Messages not yet read, as of the last one read (0 when caught up). */
  pending (): number {
    return this.#pending
  }

  /** Stops reading and deletes the consumer; once it resolves, onMessage is never called again. Safe to call twice. */
  stop (): Promise<void> {
    this.#stopped ??= this.#shutdown()
    return this.#stopped
  }

  async #open (): Promise<void> {
    const { jsm, js } = this.#conn
    const { stream, start } = this.#options
    const from: Partial<ConsumerConfig> = this.#lastSeq > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#lastSeq + 1 }
      : start === 'last-per-subject'
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.timeMs).toISOString() }
    const name = `${this.#options.namePrefix}_${randomBytes(4).toString('hex')}`
    const info = await jsm.consumers.add(stream, {
      name,
      filter_subject: this.#options.filterSubject,
      ...from,
      ack_policy: AckPolicy.None,
      replay_policy: ReplayPolicy.Instant,
      inactive_threshold: nanos(this.#options.inactiveMs ?? 5000),
      mem_storage: true
    })
    this.#name = name
    this.#pending = info.num_pending
    const consumer = await js.consumers.get(stream, name)
    // a consumer deleted under us ends the iteration (rather than retrying it forever): #run makes another
    this.#messages = await consumer.consume({ abort_on_missing_resource: true })
  }

  async #run (): Promise<void> {
    let failures = 0
    while (!this.#stopping) {
      const messages = this.#messages
      try {
        if (messages === undefined) throw new Error('no consumer')
        for await (const message of messages) {
          if (this.#stopping) break
          failures = 0
          this.#lastSeq = message.seq
          this.#pending = message.info.pending
          this.#read++
          try {
            this.#options.onMessage(message, !this.#initialDone)
          } catch (error) {
            this.#options.onError(error)
          }
          if (this.#read >= this.initialPending || message.info.pending === 0) this.#caughtUp()
        }
        if (this.#stopping) return
        throw new Error('the consumer ended')
      } catch (error) {
        if (this.#stopping) return
        this.#options.onError(new Error(`${this.#options.stream} reader ${this.#name}: ${(error as Error).message}; making it again`, { cause: error }))
      }
      this.#messages = undefined
      await this.#deleteConsumer()
      // retried with a growing wait while NATS is away
      while (!this.#stopping && this.#messages === undefined) {
        await sleep(Math.min(MAX_RETRY_MS, 100 * 2 ** failures++), undefined, { signal: this.#abort.signal }).catch(() => {})
        if (this.#stopping || this.#conn.nc.isClosed()) return
        await this.#open().catch((error: unknown) => this.#options.onError(error))
      }
    }
  }

  #caughtUp (): void {
    this.#initialDone = true
    this.#initialReadResolve()
  }

  async #deleteConsumer (): Promise<void> {
    if (this.#name === '' || this.#conn.nc.isClosed()) return
    try {
      await this.#conn.jsm.consumers.delete(this.#options.stream, this.#name)
    } catch (error) {
      // already gone is what we wanted; otherwise the inactivity threshold removes it
      const gone = isApiError(error, JetStreamApiCodes.ConsumerNotFound) || isApiError(error, JetStreamApiCodes.StreamNotFound)
      if (!gone) this.#options.onError(error)
    }
  }

  async #shutdown (): Promise<void> {
    this.#stopping = true
    this.#abort.abort()
    this.#caughtUp()
    await this.#messages?.close().catch(() => {})
    await this.#running
    // an attempt to make it again may have finished meanwhile
    await this.#messages?.close().catch(() => {})
    await this.#deleteConsumer()
  }
}
