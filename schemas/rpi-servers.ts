import { Type, type Static } from '@sinclair/typebox'
import { DeviceId, DeviceIdInput, printableText, Timestamp } from './common.js'

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
  frames: 'With an `Idempotency-Key` header (the agent sends one per batch) ' +
    'a retry of a batch whose answer was lost gets that answer again and stores nothing.'
} as const
