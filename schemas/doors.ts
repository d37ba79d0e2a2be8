import { Type, type Static } from '@sinclair/typebox'
import { DeviceId, Timestamp } from './common.js'

/** Where a door's calibration stands. */
export const CalibrationStatus = Type.Unsafe<'idle' | 'capturing' | 'training' | 'ready' | 'failed'>({
  type: 'string',
  enum: ['idle', 'capturing', 'training', 'ready', 'failed'],
  description: 'idle: nothing under way; capturing: frames are being labelled; training: the door\'s model trains; ready: the door has its own model; failed: the last finish was refused or failed (see reasons)'
})
export type CalibrationStatus = Static<typeof CalibrationStatus>

/** A door's calibration: what was captured and why the last finish was refused, if it was. */
export const DoorCalibration = Type.Object({
  status: CalibrationStatus,
  captured: Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Integer({ minimum: 0 }), { description: 'calibration frames stored per angle (degrees)' }),
  reasons: Type.Array(Type.String(), { description: 'why the last finish was refused or failed, in words a user can act on' })
}, { title: 'DoorCalibration' })
export type DoorCalibration = Static<typeof DoorCalibration>

/** Which model answers for a door. */
export const DoorModel = Type.Object({
  version: Type.String(),
  scope: Type.Unsafe<'door' | 'global'>({ type: 'string', enum: ['door', 'global'], description: 'door: the door\'s own model; global: the fallback trained by POST /training/post/train' })
}, { title: 'DoorModel' })
export type DoorModel = Static<typeof DoorModel>

/** One door as a user sees it: GET /doors/{id}. Every device doorsense knows is a door. */
export const Door = Type.Object({
  device: DeviceId,
  name: Type.String({ description: 'the name its Pi reports (empty before any keep-alive)' }),
  state: Type.Unsafe<'open' | 'closed' | 'unknown'>({
    type: 'string',
    enum: ['open', 'closed', 'unknown'],
    description: 'unknown before enough frames, after STALE_AFTER_S of silence, without a model, or while frames look unfamiliar (needsRecalibration)'
  }),
  angle: Type.Unsafe<number | null>({ type: 'number', nullable: true, description: 'the reported angle in degrees; null while unknown' }),
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'probability of the reported state (0 while unknown)' }),
  since: Timestamp,
  lastFrameAt: Type.Unsafe<string | null>({ type: 'string', format: 'date-time', nullable: true, description: 'null before the first frame' }),
  frameRate: Type.Number({ minimum: 0, description: 'frames per second over the last few seconds' }),
  live: Type.Boolean({ description: 'its Pi sent a keep-alive or frames within STALE_AFTER_S' }),
  needsRecalibration: Type.Boolean({ description: 'recent frames look unlike anything the model was calibrated on' }),
  model: Type.Unsafe<DoorModel | null>({ ...DoorModel, nullable: true, description: 'the model that answers for this door; null when none is active' }),
  calibration: DoorCalibration
}, { title: 'Door' })
export type Door = Static<typeof Door>

/** GET /doors answer. */
export const DoorList = Type.Object({ doors: Type.Array(Door) }, { title: 'DoorList' })
export type DoorList = Static<typeof DoorList>
