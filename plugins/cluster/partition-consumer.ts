/**
 * The owner's reader of one partition: an ephemeral consumer on the frame
 * stream, filtered to the partition's subjects, that first delivers the frames
 * stored since `replayFromMs` (they rebuild the doors' windows) and then every
 * new one, in stream order. No acks: the stream keeps frames by age, and a new
 * owner replays them by time (stream-reader.ts has the consumer's details).
 */
import type { ClusterConnection } from './connection.js'
import { decodeFrameBatch, type FrameBatch } from './frame-codec.js'
import type { FrameStream } from './frame-stream.js'
import { partitionFilter } from './names.js'
import { StreamReader } from './stream-reader.js'

/** A batch as the partition's owner receives it. */
export interface ConsumedBatch extends FrameBatch {
  /** Its sequence in the frame stream. */
  seq: number
  /** It was in the stream before this consumer started: it rebuilds a window rather than being news. */
  replayed: boolean
}

export interface PartitionConsumerOptions {
  partition: number
  /** Epoch ms: the stream's frames from then on are delivered first. */
  replayFromMs: number
  /** Called once per batch, in stream order; what it throws goes to onError. */
  onBatch: (batch: ConsumedBatch) => void
  /** A message that does not decode (skipped), a throwing onBatch, a consumer lost and made again. Default: ignored. */
  onError?: (err: unknown) => void
  /** How long the server keeps the consumer once nobody pulls from it (the instance died). Default 5000. */
  inactiveMs?: number
}

/** One partition's consumer; see the module's doc. */
export class PartitionConsumer {
  readonly partition: number
  #reader: StreamReader | undefined
  #delivered = 0

  private constructor (partition: number) {
    this.partition = partition
  }

  /**
   * Makes the partition's consumer and starts delivering.
   * @throws when the consumer cannot be made (no stream, NATS away)
   */
  static async start (conn: ClusterConnection, stream: FrameStream, options: PartitionConsumerOptions): Promise<PartitionConsumer> {
    const { partition, replayFromMs, onBatch } = options
    if (!Number.isInteger(partition) || partition < 0 || partition >= stream.partitions) {
      throw new RangeError(`partition consumer: partition ${partition} is not one of 0..${stream.partitions - 1}`)
    }
    if (!Number.isFinite(replayFromMs)) throw new RangeError(`partition consumer: replayFromMs ${replayFromMs} is not an epoch ms`)
    const onError = options.onError ?? (() => {})
    // the stream's last seq once the consumer is made: up to it, a batch was there before the consumer; a batch
    // delivered before it is read was there by then too
    let replayUntil = Infinity
    const consumer = new PartitionConsumer(partition)
    consumer.#reader = await StreamReader.start(conn, {
      stream: stream.name,
      filterSubject: partitionFilter(conn.names, partition),
      namePrefix: `${conn.names.cluster}_p${partition}`,
      start: { timeMs: replayFromMs },
      inactiveMs: options.inactiveMs,
      onError,
      onMessage: (message) => {
        let batch: FrameBatch
        try {
          batch = decodeFrameBatch(message.data)
        } catch (error) {
          const reason = (error as Error).message
          onError(new Error(`partition consumer ${partition}: message ${message.seq} on ${message.subject} skipped: ${reason}`, { cause: error }))
          return
        }
        consumer.#delivered++
        onBatch({ ...batch, seq: message.seq, replayed: message.seq <= replayUntil })
      }
    })
    try {
      replayUntil = (await stream.info()).lastSeq
    } catch (error) {
      await consumer.stop()
      throw error
    }
    return consumer
  }

  /** Messages of the partition not yet delivered, as of the last one delivered (0 when caught up). */
  pending (): number {
    return this.#reader?.pending() ?? 0
  }

  /** Batches handed to onBatch so far. */
  delivered (): number {
    return this.#delivered
  }

  /** Stops consuming and deletes the consumer; once it resolves, onBatch is never called again. Safe to call twice. */
  stop (): Promise<void> {
    return this.#reader?.stop() ?? Promise.resolve()
  }
}
