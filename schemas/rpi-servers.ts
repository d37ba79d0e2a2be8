import { Type, type Static } from '@sinclair/typebox'
import { decimalInteger, DeviceId, DeviceIdInput, MAX_DEVICE_ID, printableText, Timestamp } from './common.js'
import { IdempotencyHeaders } from './idempotency.js'

/** Longest Pi name kept. */
export const MAX_NAME_LENGTH = 64
/** Most frames one POST /server/post/frames may carry. */
export const MAX_FRAMES_PER_REQUEST = 4096

/**
 * POST /server/post/keep_alive body. The original also accepted this object
 * JSON-encoded as a string (a Pi calling `requests.post(json=json.dumps(…))`);
 * the route decodes such a string before validating it against this schema.
 */
export const KeepAliveBody = Type.Object({
  NAME: printableText(
    MAX_NAME_LENGTH,
    'the Pi\'s name: printable text, trimmed, 1..64 characters (control, bidirectional-control and other invisible format characters are refused)'
  ),
  ID: DeviceIdInput
}, { title: 'KeepAliveBody', description: '{NAME, ID}, or the same object JSON-encoded as a string' })
export type KeepAliveBody = Static<typeof KeepAliveBody>

/** A Pi the registry has heard from. */
export const LiveDevice = Type.Object({
  addr: Type.String({ description: 'the address its last keep-alive came from' }),
  name: Type.String(),
  id: DeviceId,
  lastSeen: Timestamp
}, { title: 'LiveDevice' })
export type LiveDevice = Static<typeof LiveDevice>

/** GET /app/get/list_of_servers answer: the live Pis, by ID. */
export const LiveDeviceList = Type.Array(LiveDevice, { title: 'LiveDeviceList' })
export type LiveDeviceList = Static<typeof LiveDeviceList>

/** A Pi remembered across restarts, live or not. */
export const KnownDevice = Type.Object({
  addr: Type.String(),
  name: Type.String(),
  id: DeviceId,
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  keepAlives: Type.Integer({ minimum: 0, description: 'keep-alives received, ever' }),
  live: Type.Boolean({ description: 'whether it has sent a keep-alive within STALE_AFTER_S' })
}, { title: 'KnownDevice' })
export type KnownDevice = Static<typeof KnownDevice>

/** GET /app/get/known_servers answer. */
export const KnownDeviceList = Type.Array(KnownDevice, { title: 'KnownDeviceList' })
export type KnownDeviceList = Static<typeof KnownDeviceList>

/**
 * One frame in any encoding domain/frames.ts accepts. Left untyped on purpose:
 * each frame is checked on its own so one bad frame is rejected, not the
 * request, and ajv's type coercion never turns a null into a 0.
 */
export const EncodedFrame = Type.Unknown({
  description: '"[n1, …, n106]" string, array of 106 numbers (53 magnitudes, 53 phases), raw Pi frame (108 ints), raw ESP32 buffer (128 ints) ' +
    'or a whole CSI_DATA line'
})

/** POST /server/post/frames body. */
export const FramesBody = Type.Object({
  ID: DeviceIdInput,
  frames: Type.Array(EncodedFrame, { minItems: 1, maxItems: MAX_FRAMES_PER_REQUEST })
}, { additionalProperties: false, title: 'FramesBody' })
export type FramesBody = Static<typeof FramesBody>

/*
 * A binary batch (POST /server/post/frames, POST /ml/post/batch with
 * Content-Type: application/octet-stream): N raw frames back to back, each
 * its values as signed bytes (domain/frames.ts decodeBinaryFrames). The body
 * has no room for the device and the layout: the query string (or a header) names them.
 */

/** The body types of the routes that take a frame batch as JSON or as bytes. */
export const FRAME_BATCH_TYPES = ['application/json', 'application/octet-stream'] as const

/** The layouts of a binary batch, with the bytes of one frame (domain/frames.ts BINARY_LAYOUTS). */
export const FRAME_LAYOUT_BYTES = { pi108: 108, esp128: 128 } as const

/** A binary batch's layout. */
function frameLayout (description: string) {
  return Type.Unsafe<keyof typeof FRAME_LAYOUT_BYTES>({ type: 'string', enum: Object.keys(FRAME_LAYOUT_BYTES), description })
}

const LAYOUTS = 'the layout of each frame of an application/octet-stream body: pi108 = 108 bytes, 54 (imaginary, real) pairs as a raw Pi frame ' +
  'lists them; esp128 = 128 bytes, 64 pairs, ESP32-CSI-Tool\'s LLTF buffer; each byte one signed 8-bit value (-128..127)'
const BINARY_ONLY = 'for an application/octet-stream body only (a JSON body is refused with it)'
const deviceInput = (description: string) => decimalInteger({ minimum: 0, maximum: MAX_DEVICE_ID }, description)

/** The query string of a route taking a binary batch: the body's device (`device` says what it is to the route) and layout. */
export function binaryBatchQuery (device: string) {
  return Type.Object({
    ID: Type.Optional(deviceInput(`${device}, 0..${MAX_DEVICE_ID}; ${BINARY_ONLY}`)),
    layout: Type.Optional(frameLayout(`${LAYOUTS}; ${BINARY_ONLY}`))
  }, { additionalProperties: false })
}

/** The headers of a route taking a binary batch: `Idempotency-Key`, and the query's device and layout for a client that cannot change its URL. */
export function binaryBatchHeaders (device: string) {
  return Type.Object({
    ...IdempotencyHeaders.properties,
    'X-Device-Id': Type.Optional(deviceInput(`${device}, as ?ID= gives it (give one, or both alike); ${BINARY_ONLY}`)),
    'X-Frame-Layout': Type.Optional(frameLayout(`the layout, as ?layout= gives it (give one, or both alike); ${BINARY_ONLY}`))
  })
}

/** A binary batch's body, for the OpenAPI document (the route takes it as bytes and validates nothing but its length). */
export const BinaryFramesBody = Type.String({
  format: 'binary',
  description: 'frames back to back, each the raw values as signed bytes (int8) in the order the text forms list them: ' +
    '108 bytes a frame with ?layout=pi108, 128 with ?layout=esp128; a length that is not a whole number of frames is a 400 naming the bytes over'
})

/** A frame that was not stored, and why. */
export const RejectedFrame = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'position in `frames`' }),
  reason: Type.String()
})
export type RejectedFrame = Static<typeof RejectedFrame>

/** POST /server/post/frames answer. */
export const FramesReceipt = Type.Object({
  accepted: Type.Integer({ minimum: 0, description: 'frames stored' }),
  rejected: Type.Array(RejectedFrame),
  labelled: Type.Integer({ minimum: 0, description: 'of the accepted, how many an open capture session stored as labelled samples' })
}, { title: 'FramesReceipt' })
export type FramesReceipt = Static<typeof FramesReceipt>

/**
 * The longer `description`s of the Pi routes (plugins/rpi-servers/routes.ts), kept beside the schemas they
 * describe. Each is one paragraph of the OpenAPI document: the pieces join with nothing added.
 */
export const rpiServerRouteDescriptions = {
  /** POST /server/post/frames */
  frames: 'The frames come as JSON (`{ID, frames}`, any encoding, each frame decoded on its own) or, with ' +
    '`Content-Type: application/octet-stream` and `?ID=<device>&layout=pi108|esp128`, as raw frames back to back, one signed byte a value ' +
    '(pi108: 108 bytes a frame, esp128: 128), decoded exactly as the same values written as text. ' +
    'Either may be compressed (`Content-Encoding: gzip`, `deflate` or `br`; the body limit holds on the decoded bytes). ' +
    'With an `Idempotency-Key` header (the agent sends one per batch) ' +
    'a retry of a batch whose answer was lost gets that answer again and stores nothing.'
} as const
