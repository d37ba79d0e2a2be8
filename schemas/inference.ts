import { Type, type Static } from '@sinclair/typebox'
import { DeviceId, DeviceIdInput, Timestamp } from './common.js'
import type { PredictionBatch } from './model.js'

/** Most frames one POST /ml/post/batch may carry. */
export const MAX_BATCH_FRAMES = 4096

/** Legacy POST /ml/post/inference body, as the original Pis send it. */
export const InferenceRequest = Type.Object({
  payload: Type.Union([
    Type.String({ description: 'the original\'s stringified list "[n1, n2, …, n106]" (or a raw frame / CSI_DATA line)' }),
    // items unchecked here: the schema's number coercion would take "1.5" for 1.5, which the frame
    // decoder (one rule for every route) refuses with the position named
    Type.Array(Type.Unknown(), {
      description: '106 features (53 magnitudes, 53 phases), or a raw Pi / ESP32 frame: ' +
        'JSON numbers (numeric strings are refused, as by POST /server/post/frames)'
    })
  ], { description: 'one CSI frame in any accepted encoding' }),
  ID: Type.Optional(DeviceIdInput)
}, { title: 'InferenceRequest' })
export type InferenceRequest = Static<typeof InferenceRequest>

/*
 * Response-only enums and nullables are written as `enum` / `nullable`
 * (OpenAPI 3.0) rather than unions: fast-json-stringify serialises a union (anyOf) by running a
 * validator on every value, which on a 4,096-frame batch is measurable.
 */
const OpenClosed = Type.Unsafe<'open' | 'closed'>({ type: 'string', enum: ['open', 'closed'], description: 'closed = the 0° class' })

const predictionFields = {
  angle: Type.Number({ description: 'the most likely door angle in degrees' }),
  state: OpenClosed,
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'probability of the predicted angle' }),
  probabilities: Type.Array(Type.Number(), { description: 'one probability per label, in the order of `labels`' })
}

/** One frame's prediction with the model that made it (POST /ml/post/inference, GET /ml/get/inference_results). */
export const InferenceResult = Type.Object({
  ...predictionFields,
  labels: Type.Array(Type.Number(), { description: 'the class angles, in the order of `probabilities`' }),
  version: Type.String({ description: 'the model version that answered' }),
  device: Type.Optional(DeviceId),
  at: Timestamp
}, { title: 'InferenceResult' })
export type InferenceResult = Static<typeof InferenceResult>

/** POST /ml/post/batch body: many frames of one device (or of none) at once. */
export const BatchRequest = Type.Object({
  ID: Type.Optional(DeviceIdInput),
  frames: Type.Array(Type.Unknown({
    description: 'one frame in any accepted encoding: 106 numbers, a raw Pi (108) or ESP32 (128) frame, the stringified list, or a CSI_DATA line'
  }), {
    minItems: 1,
    maxItems: MAX_BATCH_FRAMES,
    description: `1..${MAX_BATCH_FRAMES} frames; a frame that cannot be read gets an error in its result, the others are still classified`
  })
}, { additionalProperties: false, title: 'BatchRequest' })
export type BatchRequest = Static<typeof BatchRequest>

/** One frame's result in a batch: the prediction, or `error` saying why the frame could not be read. */
export const BatchFrameResult = Type.Object({
  angle: Type.Optional(predictionFields.angle),
  state: Type.Optional(predictionFields.state),
  confidence: Type.Optional(predictionFields.confidence),
  probabilities: Type.Optional(predictionFields.probabilities),
  error: Type.Optional(Type.String({ description: 'why this frame was not classified' }))
}, { title: 'BatchFrameResult' })
export type BatchFrameResult = Static<typeof BatchFrameResult>

/** POST /ml/post/batch answer: one result per frame, in order. */
export const BatchResponse = Type.Object({
  version: Type.String({ description: 'the model version that answered' }),
  labels: Type.Array(Type.Number(), { description: 'the class angles, in the order of each result\'s `probabilities`' }),
  device: Type.Optional(DeviceId),
  accepted: Type.Integer({ minimum: 0, description: 'frames classified' }),
  rejected: Type.Integer({ minimum: 0, description: 'frames that could not be read (their results hold `error`)' }),
  captured: Type.Integer({ minimum: 0, description: 'frames also stored as labelled samples of an open capture session' }),
  results: Type.Array(BatchFrameResult)
}, { title: 'BatchResponse' })
export type BatchResponse = Static<typeof BatchResponse>

/** The smoothed state of one door (one device). */
/** What a door is reported as. */
export const ReportedDoorState = Type.Unsafe<'open' | 'closed' | 'closedOrAjar' | 'unknown'>({
  type: 'string',
  enum: ['open', 'closed', 'closedOrAjar', 'unknown'],
  description: 'closedOrAjar: closed, or open a little — ' +
    'the door\'s calibration cannot tell the two apart and was activated anyway (acceptAjarAsClosed); ' +
    'unknown before enough frames, after STALE_AFTER_S of silence, without a model, ' +
    'or while its frames look unlike anything its model learned (needsRecalibration)'
})
export type ReportedDoorState = Static<typeof ReportedDoorState>

export const DoorState = Type.Object({
  device: DeviceId,
  angle: Type.Unsafe<number | null>({ type: 'number', nullable: true, description: 'the reported angle in degrees; null while unknown' }),
  state: ReportedDoorState,
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'smoothed probability that the door is in the reported state (0 while unknown)' }),
  since: Timestamp,
  lastFrameAt: Type.Unsafe<string | null>({ type: 'string', format: 'date-time', nullable: true, description: 'null before the first frame' })
}, { title: 'DoorState' })
export type DoorState = Static<typeof DoorState>

/** GET /ml/get/door_state answer. */
export const DoorStateList = Type.Object({
  doors: Type.Array(DoorState)
}, { title: 'DoorStateList' })
export type DoorStateList = Static<typeof DoorStateList>

/** Frames classified for one caller: the model's batch answer for them, whose device they were, and when. */
export interface ClassifiedFrames extends Omit<PredictionBatch, 'predictions'> {
  predictions: ReadonlyArray<PredictionBatch['predictions'][number]>
  device: number | undefined
  /** When they were classified (ms since the epoch). */
  at: number
}

/**
 * The longer `description`s of the /ml routes (plugins/inference/routes.ts, plugins/doors/door-state-routes.ts), kept
 * beside the schemas they describe. Each is one paragraph of the OpenAPI document: the pieces join with nothing added.
 */
export const mlRouteDescriptions = {
  /** POST /ml/post/inference */
  inference: 'The original Pis\' route: one frame as `payload` (the stringified list they send, or a JSON array), optional `ID`. ' +
    'Goes through the micro-batcher; 503 while no model is active.',
  /** POST /ml/post/batch */
  batch: `Up to ${MAX_BATCH_FRAMES} frames in any accepted encoding, one result per frame in order. ` +
    'They come as JSON (`{ID, frames}`) or, with `Content-Type: application/octet-stream` and `?layout=pi108|esp128` (`&ID=<device>` optional, ' +
    'as `ID` of a JSON body), as raw frames back to back, one signed byte a value (pi108: 108 bytes a frame, esp128: 128), ' +
    'classified exactly as the same values written as text. ' +
    'Either may be compressed (`Content-Encoding: gzip`, `deflate` or `br`; the body limit holds on the decoded bytes). ' +
    'A frame that cannot be read gets `error` in its result and the others are still classified; 400 only when none can be read. ' +
    'With an `Idempotency-Key` a retry gets the answer again, classified by the model active now ' +
    '(the same answer while it is the same model: a batch\'s answer is not kept, only what was captured): ' +
    'the frames neither move the door state nor are captured twice.',
  /** GET /ml/get/door_state */
  doorStates: 'One entry per device that has sent frames with an `ID`: angle, open/closed/unknown, confidence, since when, last frame. ' +
    'A device silent for STALE_AFTER_S is `unknown`.',
  /** GET /ml/get/door_state/stream */
  doorStateStream: 'A text/event-stream: first one `door` event per known door, ' +
    'then one per change of a door\'s state or angle (data = a DoorState as JSON). Ends when the server shuts down.'
} as const
