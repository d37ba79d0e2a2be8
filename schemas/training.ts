import { Type, type Static } from '@sinclair/typebox'
import { DeviceId, DeviceIdInput, NullableDeviceIdInput, Timestamp } from './common.js'
import { Evaluation, ModelKind, ModelVersionInfo, TrainingOptions, TrainingState } from './model.js'

/** Where a stored labelled frame came from. */
export const SampleSource = Type.Union([
  Type.Literal('frames'),
  Type.Literal('inference'),
  Type.Literal('import'),
  Type.Literal('samples'),
  Type.Literal('legacy-train'),
  Type.Literal('calibration')
], {
  description: 'frames/inference = captured live from that route; import = CSV import; samples = POST /training/post/samples; ' +
    'legacy-train = the DATA of a legacy train request; calibration = captured by a door\'s calibration (POST /doors/{id}/calibration/capture)'
})
export type SampleSource = Static<typeof SampleSource>

/** A door angle label in degrees. */
export const Angle = Type.Number({ minimum: 0, maximum: 90, description: 'door angle in degrees (0 = closed)' })

/** A count per door angle. */
export const LabelCount = Type.Object({ angle: Type.Number(), count: Type.Integer({ minimum: 0 }) })
export type LabelCount = Static<typeof LabelCount>

/** Answer of a CSV import. */
export const ImportResult = Type.Object({
  imported: Type.Integer({ minimum: 0, description: 'samples stored' }),
  lines: Type.Integer({ minimum: 0, description: 'lines read, header included' }),
  labels: Type.Array(LabelCount, { description: 'samples stored per angle' }),
  importId: Type.Integer({ minimum: 1, description: 'this import\'s id (a 409 for the same content names it)' }),
  contentSha256: Type.String({
    pattern: '^[0-9a-f]{64}$',
    description: 'sha256 of the CSV\'s lines, trimmed, blank lines left out: the same data is the same hash whatever its line endings'
  })
})
export type ImportResult = Static<typeof ImportResult>

/** One labelled frame posted to /training/post/samples. */
export const SampleInput = Type.Object({
  angle: Angle,
  frame: Type.Unknown({
    description: 'a frame in any accepted encoding: 106 features, the original "[n1, …]" string, a raw Pi frame (108 values) ' +
      'or a raw ESP32 buffer/CSI_DATA line (128 values)'
  }),
  ID: Type.Optional(DeviceIdInput)
}, { additionalProperties: false })
export type SampleInput = Static<typeof SampleInput>

/** Body of POST /training/post/samples. */
export const SamplesBody = Type.Object({
  ID: Type.Optional({ ...DeviceIdInput, description: 'device the frames came from, 0..32767 (a sample\'s own ID wins)' }),
  samples: Type.Array(SampleInput, { minItems: 1 })
}, { additionalProperties: false })
export type SamplesBody = Static<typeof SamplesBody>

/** Answer of POST /training/post/samples. */
export const SamplesResult = Type.Object({
  stored: Type.Integer({ minimum: 0 }),
  labels: Type.Array(LabelCount)
})
export type SamplesResult = Static<typeof SamplesResult>

/**
 * Body of POST /training/post/train: the original `{TYPE, DATA}` (train on
 * exactly that data), or training options (train on the stored samples), or `{}`.
 */
export const TrainBody = Type.Object({
  TYPE: Type.Optional(Type.Union([Type.Literal('CSI'), Type.Literal('RSSI')], { description: 'legacy: what DATA holds' })),
  DATA: Type.Optional(Type.Unknown({
    description: 'legacy: CSI = DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS] (DATA_TYPE 0 = phase, 1 = amplitude; 53 subcarriers; ' +
      'angle index i = i × 15°); RSSI = DATA[DOOR_ANGLE][POINTS]'
  })),
  ...TrainingOptions.properties
}, { additionalProperties: false })
export type TrainBody = Static<typeof TrainBody>

/** Answer of an accepted training request. */
export const TrainAccepted = Type.Object({
  accepted: Type.Literal(true),
  version: Type.String({ description: 'the version the run will write' }),
  kind: ModelKind,
  samples: Type.Integer({ minimum: 0, description: 'rows the run trains and evaluates on' }),
  state: TrainingState
})
export type TrainAccepted = Static<typeof TrainAccepted>

/** Body of POST /training/post/capture. */
export const CaptureBody = Type.Object({
  ID: DeviceIdInput,
  angle: Angle,
  seconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, description: 'how long the device\'s frames are labelled with `angle`' })
}, { additionalProperties: false })
export type CaptureBody = Static<typeof CaptureBody>

/** How far a capture session is: open, or how it ended. */
export const CaptureState = Type.Union([
  Type.Literal('open'),
  Type.Literal('finished'),
  Type.Literal('cancelled'),
  Type.Literal('interrupted')
], {
  description: 'open = labelling frames now (also after a restart that resumed it); finished = its time ran out or its frames were stored; ' +
    'cancelled = ended early by a cancel; interrupted = the server was down when its time ran out (the frames stored until then are kept)'
})
export type CaptureState = Static<typeof CaptureState>

/** A capture session and how far it got. */
export const CaptureStatus = Type.Object({
  ID: DeviceId,
  angle: Type.Number(),
  active: Type.Boolean({ description: 'true while state is open' }),
  state: CaptureState,
  framesStored: Type.Integer({ minimum: 0, description: 'frames stored as samples (0 after a cancel that dropped them)' }),
  framesWanted: Type.Optional(Type.Integer({ minimum: 1, description: 'the session ends once this many frames are stored' })),
  framesDropped: Type.Optional(Type.Integer({ minimum: 0, description: 'frames a cancel with keepFrames false deleted' })),
  secondsLeft: Type.Number({ minimum: 0 }),
  startedAt: Timestamp,
  endsAt: Timestamp,
  resumedAt: Type.Optional(Type.String({
    format: 'date-time',
    description: 'when a restart resumed it (frames sent while the server was down were not captured)'
  }))
})
export type CaptureStatus = Static<typeof CaptureStatus>

/** Body of POST /training/post/cancel_capture. */
export const CancelCaptureBody = Type.Object({
  ID: DeviceIdInput,
  keepFrames: Type.Optional(Type.Boolean({
    default: true,
    description: 'keep the frames captured so far as samples (default), or false to delete them (a capture started by mistake)'
  }))
}, { additionalProperties: false })
export type CancelCaptureBody = Static<typeof CancelCaptureBody>

/** Params naming a device. */
export const DeviceParams = Type.Object({ id: DeviceIdInput })

/** A count per device (null = no device given). */
export const DeviceCount = Type.Object({ device: Type.Union([DeviceId, Type.Null()]), count: Type.Integer({ minimum: 0 }) })

/** What the stored dataset holds. */
export const DatasetSummary = Type.Object({
  kind: ModelKind,
  total: Type.Integer({ minimum: 0 }),
  labels: Type.Array(LabelCount),
  sources: Type.Array(Type.Object({ source: SampleSource, count: Type.Integer({ minimum: 0 }) })),
  devices: Type.Array(DeviceCount)
})
export type DatasetSummary = Static<typeof DatasetSummary>

/**
 * Body of POST /training/post/delete_samples: which stored samples to remove.
 * The filters combine (AND); at least one of angle, source, device or
 * `all: true` is required, so an empty body never wipes the dataset.
 */
export const DeleteSamplesBody = Type.Object({
  kind: Type.Optional(ModelKind),
  angle: Type.Optional(Angle),
  source: Type.Optional(SampleSource),
  device: Type.Optional({ ...NullableDeviceIdInput, description: 'a device ID 0..32767, or null for samples stored without one' }),
  all: Type.Optional(Type.Literal(true, { description: 'remove every sample of the kind' }))
}, { additionalProperties: false })
export type DeleteSamplesBody = Static<typeof DeleteSamplesBody>

/** Answer of POST /training/post/delete_samples. */
export const DeleteSamplesResult = Type.Object({
  deleted: Type.Integer({ minimum: 0 }),
  dataset: DatasetSummary
})
export type DeleteSamplesResult = Static<typeof DeleteSamplesResult>

/** Query choosing a model kind. */
export const KindQuery = Type.Object({ kind: Type.Optional(ModelKind) }, { additionalProperties: false })

/** A model version name as the store writes it. */
export const VersionName = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,79}$', description: 'a model version, e.g. csi-20251125-183700-123' })

/** Params naming a model version. */
export const VersionParams = Type.Object({ version: VersionName })

/** Body of POST /training/post/activate. */
export const ActivateBody = Type.Object({
  version: VersionName,
  force: Type.Optional(Type.Boolean({
    description: 'activate a door version its calibration gate refused (409 without it); the answer says `forced` and the log warns'
  }))
}, { additionalProperties: false })

/** The stored model versions. */
export const ModelList = Type.Object({
  active: Type.Union([Type.String(), Type.Null()], { description: 'the active CSI version' }),
  versions: Type.Array(ModelVersionInfo, { description: 'newest first' })
})
export type ModelList = Static<typeof ModelList>

/** Query of GET /training/get/evaluation. */
export const EvaluationQuery = Type.Object({ version: Type.Optional(VersionName) }, { additionalProperties: false })

/** A version's blocked hold-out evaluation. */
export const EvaluationResponse = Type.Object({
  version: Type.String(),
  evaluation: Evaluation
})
export type EvaluationResponse = Static<typeof EvaluationResponse>

/**
 * The longer `description`s of the /training routes (plugins/training/routes.ts), kept beside the schemas they
 * describe. Each is one paragraph of the OpenAPI document: the pieces join with nothing added.
 */
export const trainingRouteDescriptions = {
  /** POST /training/post/import */
  import: 'Body: `text/csv` in the layout of door-angles-session-a.csv (header `Label,CH6_mag,…,CH58_phase`, 107 columns), ' +
    'up to IMPORT_BODY_LIMIT bytes. Any other Content-Type is a 415. ' +
    'Read as a stream, stored in one transaction: any bad line is a 400 listing the line numbers, and nothing is stored. ' +
    'The same content (sha256 of its trimmed non-blank lines) imported for the same device while the earlier import\'s samples are stored ' +
    'is a 409 naming that import, unless `duplicate=allow`; a retry with the same `Idempotency-Key` gets the first answer instead.',
  /** POST /training/post/samples */
  samples: 'Each sample: `angle` (degrees) and `frame` in any encoding the frame parser accepts. ' +
    'All or nothing: one bad frame is a 400 naming it. A retry with the same `Idempotency-Key` gets the first answer and stores nothing.',
  /** POST /training/post/train */
  train: 'Legacy body `{TYPE: "CSI" | "RSSI", DATA}` trains on exactly that data ' +
    '(CSI: DATA[DATA_TYPE][DOOR_ANGLE][SUB_CARRIER][POINTS], DATA_TYPE 0 = phase, 1 = amplitude, 53 subcarriers, angle index i = i × 15°; ' +
    'RSSI: DATA[DOOR_ANGLE][POINTS], a separate one-feature model), and stores it as samples. ' +
    '`{}` or training options train on the stored samples; ' +
    'an option it does not know is a 400 naming it (the legacy form ignores other fields, as the original did). ' +
    '202 once the run has started; 409 while one runs.',
  /** POST /training/post/activate */
  activate: 'A door version its calibration gate refused (`gate.passed: false` in the list) is a 409 (DS_GATE_REFUSED) unless `force: true`; ' +
    'then the answer carries `forced: true` and the log a warning.',
  /** GET /training/get/model/{version}/model.json, weights.bin and meta.json */
  modelFile: 'The header `x-weights-sha256` carries the hex SHA-256 of the version\'s weights.bin (also in GET /training/get/models); ' +
    'model.json + weights.bin load with tf.loadLayersModel, meta.json holds the standardisation statistics and labels the model needs.',
  /** POST /training/post/delete_samples */
  deleteSamples: 'For a mislabelled capture or a bad import. ' +
    'The filters combine; at least one of angle, source, device or `all: true` is required. ' +
    'Answers how many were removed and the dataset left. A training already running keeps the samples it read; ' +
    'a door\'s calibration frames while that calibration trains are a 409, as DELETE /doors/{id}/calibration is.',
  /** POST /training/post/capture */
  capture: 'While the session is open, frames the device posts to /server/post/frames or /ml/post/inference are also stored as samples at `angle`. ' +
    '409 while the device\'s previous session is open (POST /training/post/cancel_capture ends it). ' +
    'The session is kept in the database: a restart resumes it while its time is not up, ' +
    'else GET /training/get/capture/{id} reports it `interrupted` with the frames it stored.',
  /** POST /training/post/cancel_capture */
  cancelCapture: 'Frames the device sends afterwards are no longer labelled. ' +
    'The frames captured so far are kept as samples unless `keepFrames` is false, when they are deleted (`framesDropped` says how many). ' +
    'Answers the session, `state: "cancelled"`. 409 when the device has no open session. ' +
    'The same as DELETE /doors/{id}/calibration/capture for a door\'s calibration capture.',
  /** GET /training/get/capture/{id} */
  captureStatus: 'The open session, or the last one (kept across restarts): ' +
    '`state` open, finished, cancelled or interrupted (the server was down when its time ran out). 404 when the device never had one.'
} as const
