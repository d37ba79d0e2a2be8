/**
 * The cluster's frame stream `<c>_frames`: every instance publishes the frame
 * batches it ingests to `<c>.frames.<partition>.<device>`, and the owner of a
 * partition consumes them (partition-consumer.ts). The stream buffers frames
 * for `maxAgeMs`, which is what a new owner replays to rebuild its doors'
 * windows after a takeover.
 */
import { DiscardPolicy, JetStreamApiCodes, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { isApiError, type ClusterConnection } from './connection.js'
import { encodeFrameBatch, type FrameBatch } from './frame-codec.js'
import { frameSubject, MAX_DEVICE, partitionOf } from './names.js'

export interface FrameStreamOptions {
  /** How many partitions the devices are spread over; every instance of a cluster must use the same. */
  partitions: number
  /** How long the stream keeps a batch (what a takeover can replay). */
  maxAgeMs: number
  /** The most bytes the stream keeps, the oldest discarded first; -1 = unbounded. */
  maxBytes: number
  /** A batch published again with the same msgId within this is stored once (capped at maxAgeMs). */
  duplicateWindowMs: number
}

/** What the stream holds now. */
export interface FrameStreamInfo {
  messages: number
  bytes: number
  firstSeq: number
  lastSeq: number
}

/** The stream's description records the partition count, so an instance configured otherwise is refused. */
const DESCRIPTION = /^doorsense frames: (\d+) partitions$/

function describe (partitions: number): string {
  return `doorsense frames: ${partitions} partitions`
}

function checkOptions (options: FrameStreamOptions): void {
  const { partitions, maxAgeMs, maxBytes, duplicateWindowMs } = options
  // more partitions than device ids would leave partitions that can never hold a device
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_DEVICE + 1) {
    throw new RangeError(`frame stream: partitions ${partitions} must be an integer 1..${MAX_DEVICE + 1}`)
  }
  if (!Number.isFinite(maxAgeMs) || maxAgeMs < 1) throw new RangeError(`frame stream: maxAgeMs ${maxAgeMs} must be ≥ 1`)
  if (maxBytes !== -1 && (!Number.isInteger(maxBytes) || maxBytes < 1)) throw new RangeError(`frame stream: maxBytes ${maxBytes} must be -1 or ≥ 1`)
  if (!Number.isFinite(duplicateWindowMs) || duplicateWindowMs < 1) throw new RangeError(`frame stream: duplicateWindowMs ${duplicateWindowMs} must be ≥ 1`)
}

/** The frame stream, opened (created or brought to these limits). */
export class FrameStream {
  readonly partitions: number
  readonly #conn: ClusterConnection
  readonly #name: string

  private constructor (conn: ClusterConnection, partitions: number) {
    this.#conn = conn
    this.#name = conn.names.frameStream
    this.partitions = partitions
  }

  /**
   * Creates the stream, or updates the limits of the one there: file storage
   * (frames survive a NATS restart), the oldest discarded first, and a
   * duplicate window no longer than the stream keeps anything.
   * @throws when the stream there was made for another partition count
   */
  static async open (conn: ClusterConnection, options: FrameStreamOptions): Promise<FrameStream> {
    checkOptions(options)
    const { jsm, names } = conn
    const limits = {
      max_age: nanos(Math.round(options.maxAgeMs)),
      max_bytes: options.maxBytes,
      // NATS refuses a duplicate window longer than max_age
      duplicate_window: nanos(Math.round(Math.min(options.duplicateWindowMs, options.maxAgeMs))),
      discard: DiscardPolicy.Old
    } satisfies Partial<StreamConfig>
    let existing: StreamConfig | undefined
    try {
      existing = (await jsm.streams.info(names.frameStream)).config
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error
    }
    if (existing === undefined) {
      try {
        await jsm.streams.add({
          name: names.frameStream,
          description: describe(options.partitions),
          subjects: [names.frameSubjects],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          ...limits
        })
        return new FrameStream(conn, options.partitions)
      } catch (error) {
        // another instance created it meanwhile (with other limits, or the add would have succeeded): update it below
        existing = (await jsm.streams.info(names.frameStream).catch(() => { throw error })).config
      }
    }
    const recorded = DESCRIPTION.exec(existing.description ?? '')
    if (recorded !== null && Number(recorded[1]) !== options.partitions) {
      throw new Error(`frame stream: ${names.frameStream} was made for ${recorded[1]} partitions, this instance is configured for ` +
        `${options.partitions}: every instance of a cluster must use the same count (to change it, stop them all and delete the stream; ` +
        'it holds only recent frames)')
    }
    // the client merges this into the stream's current config
    await jsm.streams.update(names.frameStream, { ...limits, description: describe(options.partitions) })
    return new FrameStream(conn, options.partitions)
  }

  /**
   * Publishes `batch` on its partition's subject and resolves once JetStream
   * stored it. With `msgId`, a batch published again within the duplicate
   * window (a retry after a lost acknowledgement) is stored once: the answer
   * then has the first one's seq and `duplicate: true`.
   */
  async publish (batch: FrameBatch, msgId?: string): Promise<{ seq: number, duplicate: boolean }> {
    const subject = frameSubject(this.#conn.names, partitionOf(batch.device, this.partitions), batch.device)
    const ack = await this.#conn.js.publish(subject, encodeFrameBatch(batch), msgId === undefined ? undefined : { msgID: msgId })
    return { seq: ack.seq, duplicate: ack.duplicate }
  }

  /** Messages and bytes held, and the first and last sequence (0 and 0 when it never held any). */
  async info (): Promise<FrameStreamInfo> {
    const { state } = await this.#conn.jsm.streams.info(this.#name)
    return { messages: state.messages, bytes: state.bytes, firstSeq: state.first_seq, lastSeq: state.last_seq }
  }

  /** The stream's name, `<c>_frames`. */
  get name (): string {
    return this.#name
  }
}
