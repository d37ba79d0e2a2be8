import type { FastifyInstance } from 'fastify'
import type { Counter } from 'prom-client'
import { BadFrameError } from '../../core/errors.js'
import { OWN_TRANSACTION, thenMaybe, type MaybePromise, type StoreTransaction } from '../../core/store-transaction.js'
import { FrameError, parseFrameWithEncoding, type DecodedFrame } from '../../domain/frames.js'
import type { FramesReceipt, RejectedFrame } from '../../schemas/rpi-servers.js'
import type { FrameStore } from './frame-store.js'

/** Reasons quoted in the 400 when every frame of a request is bad; the rest are counted. */
const REASONS_QUOTED = 3

/** The frames of one request, sorted into decoded ones and rejected ones. */
export interface DecodedBatch {
  decoded: readonly DecodedFrame[]
  rejected: RejectedFrame[]
}

/**
 * A batch as it reaches the ingest: frames still encoded (a JSON body, an MQTT
 * text payload), each decoded on its own here, or frames decoded already (a
 * binary batch: domain/frames.ts decodeBinaryFrames, where every frame is readable).
 */
export type FrameBatch = readonly unknown[] | { readonly decoded: readonly DecodedFrame[] }

/** The decoded and rejected frames of `frames`. */
export function decodedBatch (frames: FrameBatch): DecodedBatch {
  return isDecoded(frames) ? { decoded: frames.decoded, rejected: [] } : decodeBatch(frames)
}

function isDecoded (frames: FrameBatch): frames is { readonly decoded: readonly DecodedFrame[] } {
  return !Array.isArray(frames)
}

/** Decodes each frame on its own, so one bad frame costs only itself. */
export function decodeBatch (frames: readonly unknown[]): DecodedBatch {
  const decoded: DecodedFrame[] = []
  const rejected: RejectedFrame[] = []
  frames.forEach((frame, index) => {
    try {
      decoded.push(parseFrameWithEncoding(frame))
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      rejected.push({ index, reason: err.message })
    }
  })
  return { decoded, rejected }
}

export interface FrameIngestOptions {
  store: FrameStore
  /** The training area's capture sessions (`fastify.captures`). */
  captures: Pick<FastifyInstance['captures'], 'recordWithin' | 'dedupesBatches'>
  /** Frames stored, by device. */
  received: Counter<'device'>
  /** Frames refused, by device. */
  rejected: Counter<'device'>
  /** The `device` label of a device's series (bounded: the ones past the bound share one). */
  deviceLabel?: (device: number) => string
  /**
   * Takes the decoded frames into the device's door state, inside the
   * transaction that stores them, once they are written: a batch the
   * database refuses (507) never moves the door, and a throw here (e.g. a 503
   * "queue full") rolls the batch back, so a retry never stores a frame twice.
   */
  doorState: (device: number, features: readonly Float32Array[]) => void
  /** Frames imply a keep-alive: the device is live (called once the batch is stored). */
  seen: (device: number, addr: string) => void
  /** Clock in epoch milliseconds. */
  now?: () => number
  /**
   * In a cluster (plugins/cluster): where a batch goes instead of SQLite and
   * this process's door state — the JetStream frame stream, which resolves
   * once it has the batch, stored once per `msgId`. Unset: embedded.
   */
  publish?: (device: number, features: Float32Array[], receivedAt: number, msgId?: string) => Promise<{ duplicate: boolean }>
}

/** Takes a Pi's batch of frames: decode, store the good ones, hand them to an open capture session. */
export class FrameIngest {
  private readonly options: FrameIngestOptions
  private readonly now: () => number

  constructor (options: FrameIngestOptions) {
    this.options = options
    this.now = options.now ?? Date.now
  }

  /**
   * Stores the decodable frames of `device` (one transaction, together with
   * any labelled samples an open capture session makes of them).
   * @throws BadFrameError (400) when no frame decodes; nothing is stored then
   */
  ingest (device: number, frames: FrameBatch, addr: string, tx: StoreTransaction = OWN_TRANSACTION): MaybePromise<FramesReceipt> {
    const { decoded, rejected } = decodedBatch(frames)
    const deviceLabel = { device: this.options.deviceLabel?.(device) ?? String(device) }
    if (rejected.length > 0) this.options.rejected.inc(deviceLabel, rejected.length)
    if (decoded.length === 0) throw new BadFrameError(describeAllRejected(rejected))
    const features = decoded.map((frame) => frame.features)
    // captures on SQLite label inside the frames' transaction; on PostgreSQL (DATABASE_URL) in the key's, or their own
    const labelled = this.options.store.insert(device, decoded, this.now(), () => {
      this.options.doorState(device, features)
      return this.options.captures.recordWithin(tx, device, features, 'frames')
    })
    this.options.received.inc(deviceLabel, decoded.length)
    this.options.seen(device, addr)
    return thenMaybe(labelled, (count) => ({ accepted: decoded.length, rejected, labelled: count }))
  }

  /** Whether batches go to a cluster's frame stream (see {@link FrameIngestOptions.publish}). */
  get clustered (): boolean {
    return this.options.publish !== undefined
  }

  /**
   * The cluster's way for a batch: decoded here, stored by JetStream, read
   * into its door's state by the instance that owns the door's partition.
   * Answers once JetStream has it; a retry with the same `msgId` on any
   * instance is stored once. An open capture of the device labels it (once
   * per `msgId` where the captures can tell: on PostgreSQL, shared by every
   * instance), after JetStream has it and before the answer.
   * @throws BadFrameError (400) when no frame decodes; nothing is published then
   */
  async publish (device: number, frames: FrameBatch, addr: string, msgId?: string): Promise<FramesReceipt> {
    const publish = this.options.publish
    if (!publish) throw new Error('this instance is not part of a cluster')
    const { decoded, rejected } = decodedBatch(frames)
    const deviceLabel = { device: this.options.deviceLabel?.(device) ?? String(device) }
    if (rejected.length > 0) this.options.rejected.inc(deviceLabel, rejected.length)
    if (decoded.length === 0) throw new BadFrameError(describeAllRejected(rejected))
    const features = decoded.map((frame) => frame.features)
    const { duplicate } = await publish(device, features, this.now(), msgId)
    const { captures } = this.options
    const labelled = duplicate && !captures.dedupesBatches ? 0 : await captures.recordWithin(OWN_TRANSACTION, device, features, 'frames', msgId)
    if (!duplicate) this.options.received.inc(deviceLabel, decoded.length)
    this.options.seen(device, addr)
    return { accepted: decoded.length, rejected, labelled }
  }
}

function describeAllRejected (rejected: readonly RejectedFrame[]): string {
  const quoted = rejected.slice(0, REASONS_QUOTED).map(({ index, reason }) => `frames[${index}]: ${reason}`)
  const more = rejected.length > REASONS_QUOTED ? `; and ${rejected.length - REASONS_QUOTED} more` : ''
  const count = rejected.length === 1 ? 'the only frame was' : `all ${rejected.length} frames were`
  return `${count} rejected, nothing stored: ${quoted.join('; ')}${more}`
}
