/**
 * The binary form of a frame batch on the frame stream: a 20-byte header and
 * the features as little-endian float32s. JSON would triple the size of a
 * batch and cost a parse per number; this is a copy each way.
 *
 *   offset  size  field
 *   0       1     version (1)
 *   1       1     reserved (0)
 *   2       2     device, uint16
 *   4       8     receivedAt, float64 (epoch ms)
 *   12      4     frame count, uint32
 *   16      4     feature length (per frame), uint32
 *   20      4·n·f features, float32, frame after frame
 */
import { isDevice, MAX_DEVICE } from './names.js'

/** Frames of one device as they arrived in one request or message. */
export interface FrameBatch {
  device: number
  /** When the ingest received the batch, epoch ms. */
  receivedAt: number
  /** One array per frame, every frame the same length. */
  features: Float32Array[]
}

export const FRAME_BATCH_VERSION = 1
const HEADER_BYTES = 20
/** The features start at a multiple of 4, so a decoder on an aligned buffer could view them in place. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * The bytes of `batch`.
 * @throws when the device is not 0..32767, receivedAt is not finite, there is no frame, or frames differ in length
 */
export function encodeFrameBatch (batch: FrameBatch): Uint8Array {
  const { device, receivedAt, features } = batch
  if (!isDevice(device)) throw new Error(`frame batch: device ${device} is not an integer 0..${MAX_DEVICE}`)
  if (!Number.isFinite(receivedAt)) throw new Error(`frame batch: receivedAt ${receivedAt} is not a finite epoch ms`)
  if (features.length === 0) throw new Error('frame batch: no frame')
  const length = features[0].length
  if (length === 0) throw new Error('frame batch: a frame has no feature')
  for (const [index, frame] of features.entries()) {
    if (frame.length !== length) throw new Error(`frame batch: frame ${index} has ${frame.length} features, frame 0 has ${length}`)
  }
  const bytes = new Uint8Array(HEADER_BYTES + features.length * length * 4)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, FRAME_BATCH_VERSION)
  view.setUint16(2, device, true)
  view.setFloat64(4, receivedAt, true)
  view.setUint32(12, features.length, true)
  view.setUint32(16, length, true)
  if (LITTLE_ENDIAN) {
    // bytes.buffer is fresh, so HEADER_BYTES is an aligned float32 offset
    const floats = new Float32Array(bytes.buffer, HEADER_BYTES, features.length * length)
    features.forEach((frame, index) => floats.set(frame, index * length))
  } else {
    features.forEach((frame, index) => frame.forEach((value, at) => view.setFloat32(HEADER_BYTES + (index * length + at) * 4, value, true)))
  }
  return bytes
}

/**
 * The batch in `bytes`, its frames copied into one fresh aligned buffer (each
 * frame a view of it), so nothing keeps the message's buffer alive.
 * @throws on another version, a truncated or overlong payload, or a device out of range
 */
export function decodeFrameBatch (bytes: Uint8Array): FrameBatch {
  if (bytes.byteLength < HEADER_BYTES) throw new Error(`frame batch: ${bytes.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = view.getUint8(0)
  if (version !== FRAME_BATCH_VERSION) throw new Error(`frame batch: version ${version}, this instance reads version ${FRAME_BATCH_VERSION}`)
  const device = view.getUint16(2, true)
  if (!isDevice(device)) throw new Error(`frame batch: device ${device} is not an integer 0..${MAX_DEVICE}`)
  const receivedAt = view.getFloat64(4, true)
  const count = view.getUint32(12, true)
  const length = view.getUint32(16, true)
  if (count === 0 || length === 0) throw new Error(`frame batch: ${count} frames of ${length} features (an encoder never writes an empty batch)`)
  const expected = HEADER_BYTES + count * length * 4
  if (bytes.byteLength !== expected) {
    throw new Error(`frame batch: ${count} frames of ${length} features need ${expected} bytes, the payload has ${bytes.byteLength} (truncated or corrupt)`)
  }
  const floats = new Float32Array(count * length)
  if (LITTLE_ENDIAN) {
    new Uint8Array(floats.buffer).set(bytes.subarray(HEADER_BYTES))
  } else {
    for (let at = 0; at < floats.length; at++) floats[at] = view.getFloat32(HEADER_BYTES + at * 4, true)
  }
  const features = Array.from({ length: count }, (_, index) => floats.subarray(index * length, (index + 1) * length))
  return { device, receivedAt, features }
}
