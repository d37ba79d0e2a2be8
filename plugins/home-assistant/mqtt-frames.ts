import { binaryFrameCount, decodeBinaryFrames, FrameError, type BinaryLayout, type DecodedFrame } from '../../domain/frames.js'
import { MAX_FRAMES_PER_REQUEST, type FramesReceipt } from '../../schemas/rpi-servers.js'
import type { RefusalReason, RefusalSink } from './refusals.js'

/**
 * Frames published by devices on `<base>/frames/<id>` (text) or
 * `<base>/frames/<id>/<layout>` (binary): the payload turned into the frames
 * of one `fastify.frames.ingest()` call (the path of POST /server/post/frames),
 * and an intake that never throws and reports what it refuses (refusals.ts
 * counts and logs it). Knows nothing of Fastify or MQTT.js.
 */

/** Why a payload was refused: the reasons of {@link RefusalReason} a payload itself can earn. */
export type PayloadRefusalReason = Extract<RefusalReason, 'too_large' | 'too_many' | 'undecodable' | 'overloaded' | 'failed'>

/** A payload that yields no frames to ingest; `reason` says which kind of refusal. */
export class FramesPayloadError extends Error {
  override name = 'FramesPayloadError'
  readonly reason: PayloadRefusalReason

  constructor (reason: PayloadRefusalReason, message: string) {
    super(message)
    this.reason = reason
  }
}

const NOT_JSON = Symbol('not JSON')

/**
 * The frames a payload holds, each still encoded (domain/frames.ts decodes
 * them one by one, as for HTTP):
 * - one frame: a JSON array of numbers (106 features, 108 raw Pi values, 128
 *   raw ESP32 values), the original's stringified list (`[n1, …]` as it is,
 *   or as a JSON string), or one raw CSI line (`CSI_DATA,…,[…]`);
 * - a JSON array of frames (arrays or strings, any mix of encodings);
 * - lines separated by newlines, one frame each (empty lines skipped).
 * @throws FramesPayloadError when the payload is larger than `maxBytes`, holds
 *   more than `maxFrames` frames, or is no frame at all (empty, a JSON object…)
 */
export function framesOfPayload (payload: Buffer | string, maxBytes: number, maxFrames = MAX_FRAMES_PER_REQUEST): unknown[] {
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  if (bytes > maxBytes) throw new FramesPayloadError('too_large', `payload of ${bytes} bytes is larger than the ${maxBytes} allowed (BODY_LIMIT)`)
  const text = (typeof payload === 'string' ? payload : payload.toString('utf8')).trim()
  if (text === '') throw new FramesPayloadError('undecodable', 'payload is empty')
  const frames = framesOfText(text)
  if (frames.length === 0) throw new FramesPayloadError('undecodable', 'payload holds no frame (an empty array)')
  if (frames.length > maxFrames) throw new FramesPayloadError('too_many', `payload holds ${frames.length} frames, more than the ${maxFrames} of one batch`)
  return frames
}

/**
 * The frames of a binary payload (a `<base>/frames/<id>/<layout>` message):
 * raw frames of `layout` back to back, one signed byte a value, decoded as the
 * same values written as text (domain/frames.ts decodeBinaryFrames).
 * @throws FramesPayloadError when the payload is larger than `maxBytes`, holds more than `maxFrames` frames, is empty or
 *   not a whole number of frames (the message names the bytes over)
 */
export function binaryFramesOfPayload (payload: Buffer, layout: BinaryLayout, maxBytes: number, maxFrames = MAX_FRAMES_PER_REQUEST): DecodedFrame[] {
  if (payload.length > maxBytes) {
    throw new FramesPayloadError('too_large', `payload of ${payload.length} bytes is larger than the ${maxBytes} allowed (BODY_LIMIT)`)
  }
  let count: number
  try {
    count = binaryFrameCount(payload.length, layout, { what: 'payload' })
  } catch (err) {
    if (err instanceof FrameError) throw new FramesPayloadError('undecodable', err.message)
    throw err
  }
  if (count > maxFrames) throw new FramesPayloadError('too_many', `payload holds ${count} ${layout} frames, more than the ${maxFrames} of one batch`)
  return decodeBinaryFrames(payload, layout)
}

function framesOfText (text: string): unknown[] {
  let parsed: unknown = NOT_JSON
  if (text.startsWith('[') || text.startsWith('"') || text.startsWith('{')) {
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: lines (raw frames one per line, a space-separated list…)
    }
  }
  if (parsed === NOT_JSON) return text.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  if (typeof parsed === 'string') return [parsed]
  if (Array.isArray(parsed)) {
    // an array of arrays or strings is a batch; anything else (numbers) is one frame for the decoder to judge
    const batch = parsed.length > 0 && parsed.every((item) => Array.isArray(item) || typeof item === 'string')
    return batch ? parsed : parsed.length === 0 ? [] : [parsed]
  }
  const got = parsed === null ? 'null' : typeof parsed
  throw new FramesPayloadError('undecodable', `payload must be a frame, a JSON array of frames or frames one per line, got JSON ${got}`)
}

export interface MqttFrameIntakeOptions {
  /**
   * `fastify.frames.ingest` bound to the address `mqtt` (in a cluster `publish`, which resolves once JetStream has
   * them): throws BadFrameError (400) when no frame decodes, OverloadedError (503) on a full queue.
   */
  ingest: (device: number, frames: unknown[] | { decoded: DecodedFrame[] }) => FramesReceipt | Promise<FramesReceipt>
  /** Largest payload in bytes (BODY_LIMIT, as for HTTP). */
  maxBytes: number
  /** Most frames one payload may hold. Default MAX_FRAMES_PER_REQUEST, as for HTTP. */
  maxFrames?: number
  /** Told of every refused payload, which counts and logs it (a RefusalLog: bounded, whatever the devices send). */
  refusals: RefusalSink
}

/**
 * Takes one device's MQTT payload into the frame ingest. Never throws: a
 * refused payload goes to `refusals` with its reason.
 */
export class MqttFrameIntake {
  private readonly options: MqttFrameIntakeOptions

  constructor (options: MqttFrameIntakeOptions) {
    this.options = options
  }

  /**
   * The receipt of the frames stored (in a cluster, once JetStream has them), or undefined when the payload was refused.
   * With `layout` the payload is binary frames of that layout, else text.
   */
  handle (device: number, payload: Buffer, layout?: BinaryLayout): FramesReceipt | Promise<FramesReceipt | undefined> | undefined {
    try {
      const { maxBytes, maxFrames } = this.options
      const frames = layout === undefined
        ? framesOfPayload(payload, maxBytes, maxFrames)
        : { decoded: binaryFramesOfPayload(payload, layout, maxBytes, maxFrames) }
      const receipt = this.options.ingest(device, frames)
      if (receipt instanceof Promise) return receipt.catch((error: unknown) => this.#refuse(device, error))
      return receipt
    } catch (error) {
      return this.#refuse(device, error)
    }
  }

  #refuse (device: number, error: unknown): undefined {
    try {
      this.options.refusals.refuse(reasonOf(error), { device, error: error instanceof Error ? error.message : String(error) })
    } catch {
      // a sink that throws must not turn a refusal into a crash
    }
    return undefined
  }
}

function reasonOf (error: unknown): PayloadRefusalReason {
  if (error instanceof FramesPayloadError) return error.reason
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'DS_BAD_FRAME') return 'undecodable'
  if (code === 'DS_OVERLOADED') return 'overloaded'
  return 'failed'
}
