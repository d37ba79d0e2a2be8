import { Type, type Static } from '@sinclair/typebox'
import { DeviceId, DeviceIdInput, nullablePrintableText, Timestamp } from './common.js'
import { MAX_NAME_LENGTH } from './rpi-servers.js'
import { ReportedDoorState } from './inference.js'

/** Where a door's calibration stands. */
export const CalibrationStatus = Type.Unsafe<'idle' | 'capturing' | 'training' | 'ready' | 'failed'>({
  type: 'string',
  enum: ['idle', 'capturing', 'training', 'ready', 'failed'],
  description: 'idle: nothing under way; capturing: frames are being labelled; training: the door\'s model trains; ' +
    'ready: the door has its own model; failed: the last finish was refused or failed (see reasons)'
})
export type CalibrationStatus = Static<typeof CalibrationStatus>

/** The capture running for a door: its frames are being labelled with `angle`. */
export const DoorCapture = Type.Object({
  angle: Type.Integer({ minimum: 0, maximum: 90 }),
  framesStored: Type.Integer({ minimum: 0 }),
  framesWanted: Type.Unsafe<number | null>({
    type: 'integer',
    minimum: 1,
    nullable: true,
    description: 'the capture ends once this many frames are stored; null = only the time limit'
  }),
  secondsLeft: Type.Number({ minimum: 0 }),
  endsAt: Timestamp
}, { title: 'DoorCapture' })
export type DoorCapture = Static<typeof DoorCapture>

/** Open/closed figures of an evaluation. */
export const OpenClosedFigures = Type.Object({
  accuracy: Type.Number({ minimum: 0, maximum: 1 }),
  balancedAccuracy: Type.Number({ minimum: 0, maximum: 1, description: 'mean of the closed and the open recall: "always open" scores .5' }),
  closedF1: Type.Number({ minimum: 0, maximum: 1 })
}, { title: 'OpenClosedFigures' })
export type OpenClosedFigures = Static<typeof OpenClosedFigures>

/** One angle of the ajar self-check. */
export const AjarCheckResult = Type.Object({
  angle: Type.Integer({ minimum: 1, maximum: 90, description: 'the open angle replayed' }),
  model: Type.Unsafe<'held-out' | 'left-out'>({
    type: 'string',
    enum: ['held-out', 'left-out'],
    description: 'held-out: the smallest open angle\'s held-out end through the model trained on the rest of the calibration; ' +
      'left-out: this angle through a model calibrated without it'
  }),
  frames: Type.Integer({ minimum: 0 }),
  closedShare: Type.Number({ minimum: 0, maximum: 1, description: 'share of those frames that read closed' }),
  unknownShare: Type.Number({ minimum: 0, maximum: 1 }),
  passed: Type.Boolean({ description: 'closedShare is at most the limit' })
}, { title: 'AjarCheckResult' })

/** Whether the calibration can tell ajar from closed. */
export const SelfCheckResult = Type.Object({
  ajarAngle: Type.Integer({ minimum: 1, maximum: 90, description: 'the smallest calibrated open angle' }),
  limit: Type.Number({ minimum: 0, maximum: 1, description: 'the share of an open angle\'s frames that may read closed (.1)' }),
  passed: Type.Boolean(),
  checks: Type.Array(AjarCheckResult)
}, { title: 'SelfCheckResult' })
export type SelfCheckResult = Static<typeof SelfCheckResult>

/** How the held-out frames of one calibrated angle were reported. */
export const AngleReadings = Type.Object({
  angle: Type.Integer({ minimum: 0, maximum: 90 }),
  frames: Type.Integer({ minimum: 0 }),
  closed: Type.Integer({ minimum: 0 }),
  open: Type.Integer({ minimum: 0 }),
  unknown: Type.Integer({ minimum: 0 })
}, { title: 'AngleReadings' })

/** What the last calibration's model scored on the held-out end of each captured angle (replayed as the server runs it). */
export const CalibrationResult = Type.Object({
  version: Type.String({ description: 'the door model version that was trained' }),
  activated: Type.Boolean({ description: 'whether it passed the gate (the ajar self-check and the floor) and now answers for the door' }),
  floor: Type.Number({ minimum: 0, maximum: 1, description: 'the open/closed balanced accuracy a model must reach to be activated (DOOR_CALIBRATION_FLOOR)' }),
  doorState: Type.Object({
    accuracy: Type.Number({ minimum: 0, maximum: 1, description: 'share of held-out frames whose reported angle was right' }),
    openClosed: OpenClosedFigures
  }),
  confusion: Type.Object({
    actual: Type.Array(Type.String(), { description: 'row names: "closed", "open"' }),
    reported: Type.Array(Type.String(), { description: 'column names: "closed", "open", "unknown"' }),
    counts: Type.Array(Type.Array(Type.Integer({ minimum: 0 })), { description: 'counts[actual][reported]: held-out frames from the first reported state on' })
  }),
  perAngle: Type.Array(AngleReadings, { description: 'the same held-out frames by calibrated angle' }),
  selfCheck: Type.Unsafe<SelfCheckResult | null>({
    ...SelfCheckResult,
    nullable: true,
    description: 'the ajar self-check; null for a calibration made before it existed'
  }),
  gate: Type.Unsafe<{ balancedAccuracy: number | null, closedOrAjar: number[], acceptAjarAsClosed: boolean } | null>({
    type: 'object',
    nullable: true,
    required: ['balancedAccuracy', 'closedOrAjar', 'acceptAjarAsClosed'],
    properties: {
      balancedAccuracy: {
        type: 'number',
        nullable: true,
        minimum: 0,
        maximum: 1,
        description: 'what the floor was applied to: closed-or-ajar against open when ajar was accepted as closed'
      },
      closedOrAjar: { type: 'array', items: { type: 'integer' }, description: 'open angles this door cannot tell from closed' },
      acceptAjarAsClosed: { type: 'boolean', description: 'whether finish asked to accept ajar as closed' }
    },
    description: 'the gate\'s verdict; null for a calibration made before verdicts were kept'
  }),
  at: Timestamp
}, { title: 'CalibrationResult' })
export type CalibrationResult = Static<typeof CalibrationResult>

/** What a calibration must hold: the same for every door (ml/door/calibration.ts). */
export const CalibrationProtocol = Type.Object({
  framesPerPosition: Type.Integer({ minimum: 1, description: 'frames each position needs (~10 s at 20 frames/s)' }),
  defaultAjarAngle: Type.Integer({ minimum: 1, maximum: 90, description: 'the ajar angle proposed: the smallest opening that must count as open' }),
  maxAjarAngle: Type.Integer({ minimum: 1, maximum: 90, description: 'the widest angle that may serve as the ajar position' }),
  openAngle: Type.Integer({ minimum: 1, maximum: 90, description: 'fully open' }),
  ajarClosedLimit: Type.Number({ minimum: 0, maximum: 1, description: 'the share of an open angle\'s frames the self-check lets read closed' })
}, { title: 'CalibrationProtocol' })
export type CalibrationProtocol = Static<typeof CalibrationProtocol>

/** A door's calibration: what was captured, what runs, and why the last finish was refused, if it was. */
export const DoorCalibration = Type.Object({
  status: CalibrationStatus,
  protocol: CalibrationProtocol,
  captured: Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Integer({ minimum: 0 }), { description: 'calibration frames stored per angle (degrees)' }),
  capture: Type.Unsafe<DoorCapture | null>({ ...DoorCapture, nullable: true, description: 'the capture under way; null when none' }),
  reasons: Type.Array(Type.String(), { description: 'why the last finish was refused or failed, in words a user can act on' }),
  result: Type.Unsafe<CalibrationResult | null>({
    ...CalibrationResult,
    nullable: true,
    description: 'the last finished calibration\'s figures; null before any'
  })
}, { title: 'DoorCalibration' })
export type DoorCalibration = Static<typeof DoorCalibration>

/** Which model answers for a door. */
export const DoorModel = Type.Object({
  version: Type.String(),
  scope: Type.Unsafe<'door' | 'global'>({
    type: 'string',
    enum: ['door', 'global'],
    description: 'door: the door\'s own model; global: the fallback trained by POST /training/post/train'
  })
}, { title: 'DoorModel' })
export type DoorModel = Static<typeof DoorModel>

/** Why a door reads as it does. */
export const DoorReason = Type.Object({
  code: Type.Unsafe<'no-model' | 'not-calibrated' | 'unfamiliar' | 'closed-or-ajar'>({
    type: 'string',
    enum: ['no-model', 'not-calibrated', 'unfamiliar', 'closed-or-ajar'],
    description: 'no-model: no model answers (unknown); ' +
      'not-calibrated: on the shared model, and its frames are unlike anything that model learned — another room (unknown); ' +
      'unfamiliar: its own model finds its recent frames unlike the calibration (unknown); ' +
      'closed-or-ajar: its calibration cannot tell ajar from closed (closed reads closedOrAjar)'
  }),
  message: Type.String({ description: 'the same in words, with what to do' })
}, { title: 'DoorReason' })
export type DoorReason = Static<typeof DoorReason>

/** One door as a user sees it: GET /doors/{id}. Every device doorsense knows is a door. */
export const Door = Type.Object({
  device: DeviceId,
  name: Type.String({ description: 'the name a user gave the door (PATCH /doors/{id}), else the NAME its Pi reports (empty before any keep-alive)' }),
  state: ReportedDoorState,
  reason: Type.Unsafe<DoorReason | null>({
    ...DoorReason,
    nullable: true,
    description: 'why the door reads unknown or closedOrAjar, or what limits it; null when nothing does'
  }),
  angle: Type.Unsafe<number | null>({ type: 'number', nullable: true, description: 'the reported angle in degrees; null while unknown' }),
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'probability of the reported state (0 while unknown)' }),
  since: Timestamp,
  lastFrameAt: Type.Unsafe<string | null>({ type: 'string', format: 'date-time', nullable: true, description: 'null before the first frame' }),
  frameRate: Type.Number({ minimum: 0, description: 'frames per second over the last few seconds' }),
  live: Type.Boolean({ description: 'its Pi sent a keep-alive or frames within STALE_AFTER_S' }),
  needsRecalibration: Type.Boolean({
    description: 'its recent frames look unlike anything its model learned ' +
      '(the state is unknown meanwhile; reason unfamiliar, or not-calibrated on the shared model): the room changed, or it is another room. ' +
      'Only frames set it: a door moving between its calibrated positions does not, and neither does a calibration accepted with ' +
      'acceptAjarAsClosed (that limit shows as state closedOrAjar and reason closed-or-ajar)'
  }),
  model: Type.Unsafe<DoorModel | null>({ ...DoorModel, nullable: true, description: 'the model that answers for this door; null when none is active' }),
  calibration: DoorCalibration
}, { title: 'Door' })
export type Door = Static<typeof Door>

/** GET /doors answer. */
export const DoorList = Type.Object({
  doors: Type.Array(Door),
  next: Type.Unsafe<number | null>({ type: 'integer', nullable: true, description: 'the `after` of the next page; null when this page is the last' })
}, { title: 'DoorList' })
export type DoorList = Static<typeof DoorList>

/** GET /doors query: a page of doors. */
export const DoorListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'doors on this page (default: all)' })),
  after: Type.Optional({ ...DeviceIdInput, description: 'the page starts after this device ID (the previous page\'s `next`)' })
}, { additionalProperties: false, title: 'DoorListQuery' })
export type DoorListQuery = Static<typeof DoorListQuery>

/** Path parameters of /doors/{id}/…. */
export const DoorParams = Type.Object({ id: { ...DeviceIdInput, description: 'the door\'s device ID, 0..32767' } })
export type DoorParams = Static<typeof DoorParams>

/** PATCH /doors/{id} body: the door's own name, or null for its Pi's NAME. */
export const DoorUpdate = Type.Object({
  name: nullablePrintableText(
    MAX_NAME_LENGTH,
    'the name to show: printable text, trimmed, 1..64 characters, kept across keep-alives and restarts; null shows the NAME its Pi reports again'
  )
}, { additionalProperties: false, title: 'DoorUpdate' })
export type DoorUpdate = Static<typeof DoorUpdate>

/** POST /doors/{id}/calibration/capture body: label this door's next frames with `angle`. */
export const CaptureRequest = Type.Object({
  angle: Type.Integer({ minimum: 0, maximum: 90, description: 'the angle the door is held at, in degrees (0 = closed)' }),
  frames: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'stop once this many frames are stored' })),
  seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600, description: 'stop after this long (default 30 s)' }))
}, { additionalProperties: false, title: 'CaptureRequest' })
export type CaptureRequest = Static<typeof CaptureRequest>

/** POST /doors/{id}/calibration/finish body (optional). */
export const FinishRequest = Type.Object({
  acceptAjarAsClosed: Type.Optional(Type.Boolean({
    description: 'activate even if the self-check finds that this door cannot tell ajar from closed: ' +
      'its closed is then reported as closedOrAjar (confidence at most .5) with reason closed-or-ajar'
  }))
}, { additionalProperties: false, title: 'FinishRequest' })
export type FinishRequest = Static<typeof FinishRequest>

/** POST /doors/{id}/calibration/finish answer (202): the door's model is training. */
export const FinishAccepted = Type.Object({
  device: Type.Integer(),
  version: Type.String({ description: 'the door model version being trained' }),
  status: Type.Literal('training')
}, { title: 'FinishAccepted' })
export type FinishAccepted = Static<typeof FinishAccepted>

/**
 * The longer `description`s of the /doors routes (plugins/doors/routes.ts), kept beside the schemas they
 * describe. Each is one paragraph of the OpenAPI document: the pieces join with nothing added.
 */
export const doorRouteDescriptions = {
  /** GET /doors/stream */
  stream: 'A text/event-stream: first one `door` event per known door, ' +
    'then one per change (state, angle, recalibration, calibration, liveness; frame rate at most once a second), each with a whole Door as `data`; ' +
    '`removed` with `{"device": n}` when a door is removed. Ends when the server shuts down; reconnect and you get a fresh snapshot.',
  /** PATCH /doors/{id} */
  rename: 'The door shows `name` from now on — on the dashboard, in GET /doors and in Home Assistant — whatever NAME its Pi reports; ' +
    '`null` goes back to the Pi\'s NAME. Kept across restarts; removing the door forgets it.',
  /** DELETE /doors/{id} */
  remove: 'Forgets the door\'s calibration and model and removes its Pi from the known list; Home Assistant is told to drop its entities. ' +
    'A Pi that posts again comes back as a new door.',
  /** POST /doors/{id}/calibration/capture */
  capture: 'Labels this door\'s next frames with `angle` (0 = closed) until `frames` are stored or `seconds` pass (default 30), ' +
    'whichever comes first. 409 while a capture or a training runs for this door.',
  /** POST /doors/{id}/calibration/finish */
  finish: 'Checks the calibration — closed (0°), ajar (the smallest open angle, at most 30°) and a wider open angle, ' +
    'at least 200 frames of each — trains the door\'s model in the background on this door\'s calibration frames only, ' +
    'judges it on the last part of each angle\'s recording, and runs the ajar self-check: ' +
    'a model trained on the rest replays the held-out end of the ajar angle, ' +
    'and for each other open angle a model trained without it replays that angle. ' +
    'If more than 10 % of those frames read closed the door cannot tell ajar from closed, and the calibration is refused — ' +
    'unless `acceptAjarAsClosed`, which activates it with closed reported as `closedOrAjar`. ' +
    'It takes over only when its open/closed balanced accuracy reaches DOOR_CALIBRATION_FLOOR; ' +
    'otherwise the door keeps what it had and `calibration.reasons` says why. ' +
    '400 with the reasons when the calibration is not enough; 409 with Retry-After while a calibration trains (one door trains at a time).',
  /** DELETE /doors/{id}/calibration */
  forget: 'Deletes this door\'s calibration frames and makes the door use the global model again ' +
    '(its earlier versions stay listed and can be activated with POST /training/post/activate).'
} as const
