/**
 * Frame decoding: every encoding a Pi, an ESP32 or an admin script may send,
 * turned into the 106 features the model reads: 53 magnitudes then 53 phases
 * (radians), subcarriers CH6..CH58 in the order of the recorded CSV.
 *
 * Accepted encodings:
 * - 106 numbers (a JSON array, or the original's string `"[n1, …, n106]"`),
 * - a raw Pi frame: 108 integers = 54 (imaginary, real) pairs; pair i (1..53)
 *   is CH(i+5), pair 27 is the DC null CH32, pair 0 is unused,
 * - a raw ESP32-CSI-Tool buffer: 128 integers = 64 (imaginary, real) pairs of
 *   the LLTF, pair i is CHi; alone or as a whole `CSI_DATA,…,[…]` line (the
 *   line's own length field is unreliable, the array is trusted).
 *
 * A raw frame also comes as bytes: a binary batch (an
 * `application/octet-stream` body, an MQTT payload on a layout's topic) is N
 * frames back to back, each its 108 or 128 values as signed bytes (int8), in
 * the order the text forms list them ({@link decodeBinaryFrames}).
 */
import { describeValue } from '../schemas/describe.js'

/** Subcarriers per frame (CH6..CH58). */
export const SUBCARRIERS = 53
/** Features per frame: magnitudes then phases. */
export const FEATURES = SUBCARRIERS * 2
/** First subcarrier number (CH6). */
export const FIRST_SUBCARRIER = 6
/** Index (0-based, within the 53) of CH32, the DC null: always 0 in the recordings. */
export const DC_INDEX = 32 - FIRST_SUBCARRIER
/** Values in a raw Pi frame: 54 (imaginary, real) pairs. */
export const RAW_PI_VALUES = 108
/** Values in a raw ESP32 LLTF buffer: 64 (imaginary, real) pairs. */
export const RAW_ESP32_VALUES = 128

/**
 * What the hardware can report (test/fixtures/csi/README.md): the ESP32 gives
 * each imaginary and real part as a signed 8-bit integer, so a raw value is an
 * integer in -128..127 (the recordings span -50..101).
 */
export const RAW_MIN = -128
export const RAW_MAX = 127
/** The largest magnitude a pair of int8 parts can make, √(128² + 128²) ≈ 181.02, rounded up (recorded: 0..49). */
export const MAGNITUDE_MAX = 182
/** Phases are atan2 results in [-π, π]; the CSV rounds to 3 decimals, so ±3.142 is its edge. */
export const PHASE_LIMIT = 3.142
/** The pair that holds CH6 in each raw encoding: a raw Pi frame's pair 0 is unused, an ESP32 LLTF's pair i is CHi. */
const FIRST_PAIR = { 'raw-pi': 1, 'raw-esp32': FIRST_SUBCARRIER } as const

/** Which encoding a frame arrived in. */
export type FrameEncoding = 'features' | 'raw-pi' | 'raw-esp32'

/** A frame decoded into its 106 features, with the encoding it arrived in (what the ingest stores). */
export interface DecodedFrame {
  features: Float32Array
  encoding: FrameEncoding
  /** A raw frame's values as received (set for `raw-pi` and `raw-esp32`): what a store keeps, the features are recomputed from them exactly. */
  raw?: Int8Array
}

/**
 * The layouts of a binary batch: each frame the raw values as the receiver
 * reports them, one signed byte (int8) each, in the text forms' order.
 * - `pi108`: 108 bytes, 54 (imaginary, real) pairs, the raw Pi frame;
 * - `esp128`: 128 bytes, 64 (imaginary, real) pairs, ESP32-CSI-Tool's LLTF buffer.
 */
export const BINARY_LAYOUTS = {
  pi108: { bytes: RAW_PI_VALUES, encoding: 'raw-pi' },
  esp128: { bytes: RAW_ESP32_VALUES, encoding: 'raw-esp32' }
} as const satisfies Record<string, { bytes: number, encoding: FrameEncoding }>

/** A binary batch's layout: `pi108` or `esp128`. */
export type BinaryLayout = keyof typeof BINARY_LAYOUTS

/** Whether `value` names a binary layout. */
export function isBinaryLayout (value: unknown): value is BinaryLayout {
  return typeof value === 'string' && Object.hasOwn(BINARY_LAYOUTS, value)
}

/** A frame that cannot be decoded; `message` says what is wrong with it. */
export class FrameError extends Error {
  override name = 'FrameError'
}

/** Column names of the 106 features, as in the recorded CSV header. */
export const FEATURE_NAMES: readonly string[] = [
  ...Array.from({ length: SUBCARRIERS }, (_, i) => `CH${i + FIRST_SUBCARRIER}_mag`),
  ...Array.from({ length: SUBCARRIERS }, (_, i) => `CH${i + FIRST_SUBCARRIER}_phase`)
]

/**
 * Decodes one frame in any accepted encoding into 106 features.
 * @throws {FrameError} naming the problem (empty, wrong count, a value that is not a finite number)
 */
export function parseFrame (input: unknown): Float32Array {
  return decodeValues(toValues(input))
}

/**
 * Like {@link parseFrame}, also telling which encoding the frame was in, and
 * for a raw frame its values as received (108 or 128 signed 8-bit integers:
 * what a store keeps, the features are recomputed from them exactly).
 */
export function parseFrameWithEncoding (input: unknown): DecodedFrame {
  const values = toValues(input)
  const features = decodeValues(values)
  const encoding = encodingOf(values.length)
  // decoded: every raw value is an integer in -128..127
  return encoding === 'features' ? { features, encoding } : { features, encoding, raw: Int8Array.from(values) }
}

function decodeValues (values: ArrayLike<number>): Float32Array {
  switch (values.length) {
    case FEATURES: return checkedFeatures(values)
    case RAW_PI_VALUES: return fromPairs(checkedRaw(values, 'raw Pi'), FIRST_PAIR['raw-pi'])
    case RAW_ESP32_VALUES: return fromPairs(checkedRaw(values, 'raw ESP32'), FIRST_PAIR['raw-esp32'])
    default:
      throw new FrameError(`frame must hold ${FEATURES} features, ${RAW_PI_VALUES} raw Pi values or ${RAW_ESP32_VALUES} raw ESP32 values, ` +
        `got ${values.length}`)
  }
}

/**
 * Raw I/Q parts outside what an ESP32 reports (a 1e20, a 3.5) are not a
 * measurement: refused, since stored they would be classified with full
 * confidence and could poison a calibration.
 */
function checkedRaw (values: ArrayLike<number>, kind: string): ArrayLike<number> {
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (!Number.isInteger(value) || value < RAW_MIN || value > RAW_MAX) {
      throw new FrameError(`${kind} frame value ${i} is ${String(value)}: ` +
        `raw imaginary/real parts are integers in ${RAW_MIN}..${RAW_MAX} (signed 8-bit, as the ESP32 reports them)`)
    }
  }
  return values
}

/** Why feature `index` (0..105) cannot be `value`: magnitudes lie in 0..MAGNITUDE_MAX, phases in ±PHASE_LIMIT radians. */
export function featureProblem (index: number, value: number): string | undefined {
  const magnitude = index < SUBCARRIERS
  if (magnitude ? value >= 0 && value <= MAGNITUDE_MAX : value >= -PHASE_LIMIT && value <= PHASE_LIMIT) return undefined
  const range = magnitude ? `magnitudes lie in 0..${MAGNITUDE_MAX}` : `phases lie in -${PHASE_LIMIT}..${PHASE_LIMIT} radians`
  return `${FEATURE_NAMES[index] ?? `feature ${index}`} is ${String(value)}: ${range}`
}

function checkedFeatures (values: ArrayLike<number>): Float32Array {
  for (let i = 0; i < values.length; i++) {
    const problem = featureProblem(i, values[i])
    if (problem !== undefined) throw new FrameError(`frame feature ${problem}`)
  }
  return Float32Array.from(values)
}

function encodingOf (count: number): FrameEncoding {
  return count === FEATURES ? 'features' : count === RAW_PI_VALUES ? 'raw-pi' : 'raw-esp32'
}

/** How messages about a binary batch name it, and how many frames it may hold. */
export interface BinaryBatchLimits {
  /** How messages name the bytes: `body` (the default), `payload`. */
  what?: string
  /** Most frames the batch may hold (none by default). */
  maxFrames?: number
}

/**
 * Decodes a binary batch: `bytes` holds frames of `layout` back to back, each
 * its raw values as signed bytes. Every frame decodes exactly as the same
 * values written as text do (same pairs, same features), and none can be out
 * of range: an int8 is always in -128..127.
 * @throws {FrameError} when `bytes` is empty, not a whole number of frames (the message names the count and the
 *   bytes over) or more frames than `limits.maxFrames`; nothing is decoded then
 */
export function decodeBinaryFrames (bytes: Uint8Array, layout: BinaryLayout, limits: BinaryBatchLimits = {}): DecodedFrame[] {
  const { bytes: size, encoding } = BINARY_LAYOUTS[layout]
  const count = binaryFrameCount(bytes.length, layout, limits)
  const values = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length)
  const frames: DecodedFrame[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const raw = values.subarray(i * size, (i + 1) * size)
    frames[i] = { features: fromPairs(raw, FIRST_PAIR[encoding]), encoding, raw }
  }
  return frames
}

/**
 * How many frames of `layout` `byteLength` bytes hold.
 * @throws {FrameError} when none, not a whole number (`body of 1000 bytes is 9 pi108 frames of 108 bytes and 28 bytes over`),
 *   or more than `limits.maxFrames`
 */
export function binaryFrameCount (byteLength: number, layout: BinaryLayout, { what = 'body', maxFrames = Infinity }: BinaryBatchLimits = {}): number {
  const size = BINARY_LAYOUTS[layout].bytes
  if (byteLength === 0) throw new FrameError(`${what} is empty: a ${layout} batch is 1 or more frames of ${size} bytes`)
  const count = Math.floor(byteLength / size)
  const over = byteLength - count * size
  if (over !== 0) {
    throw new FrameError(`${what} of ${byteLength} bytes is ${count} ${layout} frame${count === 1 ? '' : 's'} of ${size} bytes ` +
      `and ${over} byte${over === 1 ? '' : 's'} over`)
  }
  if (count > maxFrames) throw new FrameError(`${what} of ${byteLength} bytes holds ${count} ${layout} frames, more than the ${maxFrames} of one batch`)
  return count
}

/**
 * The frames as one binary batch, when every one is a raw frame of the same
 * layout (108 values, or 128: an ESP32 array or a whole CSI_DATA line);
 * undefined when any is not (106 features, a frame that does not decode, a mix
 * of layouts), or there is none. The bytes decode ({@link decodeBinaryFrames})
 * to exactly the features the frames decode to.
 */
export function encodeBinaryFrames (frames: readonly unknown[]): { layout: BinaryLayout, bytes: Uint8Array } | undefined {
  if (frames.length === 0) return undefined
  let layout: BinaryLayout | undefined
  let bytes: Int8Array | undefined
  for (let i = 0; i < frames.length; i++) {
    let values: ArrayLike<number>
    try {
      values = toValues(frames[i])
    } catch (err) {
      if (err instanceof FrameError) return undefined
      throw err
    }
    const own = values.length === RAW_PI_VALUES ? 'pi108' : values.length === RAW_ESP32_VALUES ? 'esp128' : undefined
    if (own === undefined || (layout !== undefined && own !== layout)) return undefined
    if (!isRawRange(values)) return undefined
    layout = own
    const size = BINARY_LAYOUTS[own].bytes
    bytes ??= new Int8Array(frames.length * size)
    bytes.set(values, i * size)
  }
  return layout === undefined || bytes === undefined ? undefined : { layout, bytes: new Uint8Array(bytes.buffer) }
}

function isRawRange (values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (!Number.isInteger(value) || value < RAW_MIN || value > RAW_MAX) return false
  }
  return true
}

/**
 * Magnitude and phase of each (imaginary, real) pair, starting at the pair
 * that holds CH6. CH32 is set to exactly 0, as in the recordings (the ESP32
 * reports a small non-zero value there).
 */
function fromPairs (values: ArrayLike<number>, firstPair: number): Float32Array {
  const features = new Float32Array(FEATURES)
  for (let k = 0; k < SUBCARRIERS; k++) {
    if (k === DC_INDEX) continue
    const imaginary = values[2 * (firstPair + k)]
    const real = values[2 * (firstPair + k) + 1]
    features[k] = Math.sqrt(imaginary * imaginary + real * real)
    features[SUBCARRIERS + k] = Math.atan2(imaginary, real)
  }
  return features
}

/** Turns a string or an array into checked finite numbers. */
function toValues (input: unknown): ArrayLike<number> {
  if (typeof input === 'string') return valuesFromText(input)
  if (Array.isArray(input)) return checkedNumbers(input)
  if (input instanceof Float32Array || input instanceof Float64Array) return checkedNumbers(input)
  if (input === null || input === undefined) throw new FrameError('frame is missing')
  throw new FrameError(`frame must be an array of numbers or a string, got ${typeof input}`)
}

function valuesFromText (text: string): ArrayLike<number> {
  let body = text.trim()
  if (body.startsWith('CSI_DATA')) {
    const open = body.indexOf('[')
    const close = body.lastIndexOf(']')
    if (open < 0 || close < open) throw new FrameError('CSI_DATA line has no [ … ] array of values')
    body = body.slice(open, close + 1)
  }
  if (body === '' || body === '[]') throw new FrameError('frame is empty')
  if (body.startsWith('[') && body.endsWith(']')) {
    // fast path: the original's "[n1, n2, …]" is valid JSON
    try {
      const parsed: unknown = JSON.parse(body)
      if (Array.isArray(parsed)) return checkedNumbers(parsed)
    } catch {
      // not JSON (space-separated, NaN, …): fall through to the tolerant reader
    }
    body = body.slice(1, -1)
  }
  const tokens = body.split(/[\s,]+/).filter((token) => token !== '')
  if (tokens.length === 0) throw new FrameError('frame is empty')
  return checkedNumbers(tokens.map((token, index) => {
    const value = Number(token)
    if (!Number.isFinite(value)) throw new FrameError(`frame value ${index} is not a finite number (got ${describeValue(token)})`)
    return value
  }))
}

function checkedNumbers (values: ArrayLike<unknown>): ArrayLike<number> {
  if (values.length === 0) throw new FrameError('frame is empty')
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      const shown = typeof value === 'number' || value === undefined ? String(value) : describeValue(value)
      throw new FrameError(`frame value ${i} is not a finite number (got ${shown})`)
    }
  }
  return values as ArrayLike<number>
}
