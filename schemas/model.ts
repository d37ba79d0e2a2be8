import { Type, type Static } from '@sinclair/typebox'

/** The model handler's states, exactly as the original Flask backend named them. */
export const TrainingState = Type.Union([
  Type.Literal('MODEL_DOESNT_EXIST'),
  Type.Literal('START_TRAINING'),
  Type.Literal('TRAINING_IN_PROGRESS'),
  Type.Literal('FINISHED_TRAINING'),
  Type.Literal('TRAINING_FAILED')
], { description: 'model handler state (the original FSM)' })
export type TrainingState = Static<typeof TrainingState>

/** What a model reads: 106-feature CSI frames, or the legacy one-number RSSI readings. */
export const ModelKind = Type.Union([Type.Literal('csi'), Type.Literal('rssi')])
export type ModelKind = Static<typeof ModelKind>

/** How a CSI frame's 106 values are turned into model inputs. */
export const FeatureSet = Type.Union([
  Type.Literal('raw'),
  Type.Literal('magnitudes'),
  Type.Literal('magnitudes+phase-diff')
], { description: 'raw = 53 magnitudes + 53 raw phases; phase-diff = adjacent-subcarrier phase differences, which cancel the per-packet phase offset' })
export type FeatureSet = Static<typeof FeatureSet>

/** Network architectures the trainer can build. */
export const Architecture = Type.Union([
  Type.Literal('softmax'),
  Type.Literal('original'),
  Type.Literal('mlp')
], {
  description: 'softmax = multinomial logistic regression; original = Dense 24 relu -> Dense n (the 2021 Keras model); mlp = wider MLP with L2 and dropout'
})
export type Architecture = Static<typeof Architecture>

/** Options of one training run; every field has a measured default. */
export const TrainingOptions = Type.Object({
  kind: Type.Optional(ModelKind),
  architecture: Type.Optional(Architecture),
  features: Type.Optional(FeatureSet),
  epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  learningRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  l2: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  holdout: Type.Optional(Type.Number({
    minimum: 0,
    maximum: 0.5,
    description: 'share of each label\'s rows (its tail, in insertion order) held out for evaluation'
  })),
  earlyStopping: Type.Optional(Type.Boolean({ description: 'stop on a blocked validation slice of the train part (measured to hurt; off by default)' })),
  seed: Type.Optional(Type.Integer())
}, { additionalProperties: false })
export type TrainingOptions = Static<typeof TrainingOptions>

/** One frame's answer. */
export const Prediction = Type.Object({
  angle: Type.Number({ description: 'the most likely door angle in degrees' }),
  state: Type.Union([Type.Literal('open'), Type.Literal('closed')], { description: 'closed = the 0° class' }),
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'probability of the predicted angle' }),
  probabilities: Type.Array(Type.Number(), { description: 'one probability per label, in the order of `labels`' })
})
export type Prediction = Static<typeof Prediction>

/** The answers of one model call, from one model version (the model area's predict, the inference area's micro-batcher). */
export const PredictionBatch = Type.Object({
  version: Type.String({ description: 'the model version that answered' }),
  labels: Type.Array(Type.Number(), { description: 'the class angles, in the order of each prediction\'s probabilities' }),
  predictions: Type.Array(Prediction)
})
export type PredictionBatch = Static<typeof PredictionBatch>

/** Per-class figures of an evaluation. */
export const ClassFigures = Type.Object({
  label: Type.Number(),
  precision: Type.Number(),
  recall: Type.Number(),
  f1: Type.Number(),
  support: Type.Integer()
})

/** Closed (0°) against open (any other angle): accuracy alone flatters, since "always open" scores the open share. */
export const OpenClosedEvaluation = Type.Object({
  accuracy: Type.Number({ minimum: 0, maximum: 1 }),
  balancedAccuracy: Type.Number({ minimum: 0, maximum: 1, description: 'mean of the closed and the open recall ("always open" scores .5)' }),
  closedF1: Type.Number({ minimum: 0, maximum: 1, description: 'F1 of the "closed" class' }),
  f1: Type.Number({ description: 'F1 of the "closed" class (the name of closedF1 before 0.2; kept for old clients)' })
})
export type OpenClosedEvaluation = Static<typeof OpenClosedEvaluation>

/** The door state a model gives: each label's held-out tail replayed through the pipeline the server runs for it. */
export const DoorStateEvaluation = Type.Object({
  accuracy: Type.Number({ minimum: 0, maximum: 1, description: 'share of counted frames whose reported angle was right (unknown counts as wrong)' }),
  openClosed: Type.Object({
    accuracy: Type.Number({ minimum: 0, maximum: 1 }),
    balancedAccuracy: Type.Number({ minimum: 0, maximum: 1 }),
    closedF1: Type.Number({ minimum: 0, maximum: 1 })
  }),
  window: Type.Integer({ minimum: 1, description: 'frames per window (k)' }),
  latencyFrames: Type.Integer({ minimum: 0, description: 'frames a fresh device needs before its first reported state; frames before it are not counted' }),
  confusion: Type.Optional(Type.Array(Type.Array(Type.Integer({ minimum: 0 })), {
    description: 'closed/open: rows = true (closed, open), columns = reported (closed, open, unknown)'
  }))
})
export type DoorStateEvaluation = Static<typeof DoorStateEvaluation>

/** How a model did on its blocked hold-out. */
export const Evaluation = Type.Object({
  accuracy: Type.Number({ minimum: 0, maximum: 1, description: 'per frame (per window for a door model)' }),
  labels: Type.Array(Type.Number()),
  perClass: Type.Array(ClassFigures),
  confusion: Type.Array(Type.Array(Type.Integer()), { description: 'rows = true label, columns = predicted label, in the order of `labels`' }),
  openClosed: OpenClosedEvaluation,
  doorState: Type.Optional(DoorStateEvaluation),
  novelty: Type.Optional(Type.Object({
    auc: Type.Number({ minimum: 0, maximum: 1, description: 'how well the novelty score tells a shifted recording\'s windows from the held-out ones' })
  })),
  trainRows: Type.Integer(),
  testRows: Type.Integer()
})
export type Evaluation = Static<typeof Evaluation>

/** Per-epoch progress of a running (or the last) training. */
export const TrainingProgress = Type.Object({
  state: TrainingState,
  version: Type.Optional(Type.String()),
  epoch: Type.Integer({ minimum: 0 }),
  epochs: Type.Integer({ minimum: 0 }),
  loss: Type.Optional(Type.Number()),
  accuracy: Type.Optional(Type.Number()),
  validationAccuracy: Type.Optional(Type.Number()),
  elapsedSeconds: Type.Number(),
  etaSeconds: Type.Optional(Type.Number())
})
export type TrainingProgress = Static<typeof TrainingProgress>

/** A stored model version. */
export const ModelVersionInfo = Type.Object({
  version: Type.String(),
  kind: ModelKind,
  createdAt: Type.String({ format: 'date-time' }),
  active: Type.Boolean(),
  labels: Type.Array(Type.Number()),
  accuracy: Type.Optional(Type.Number()),
  trainingSeconds: Type.Number(),
  weightsSha256: Type.String(),
  scope: Type.Unsafe<'global' | 'door'>({
    type: 'string',
    enum: ['global', 'door'],
    description: 'global: the fallback (POST /training/post/train); door: one door\'s own model (its calibration)'
  }),
  device: Type.Optional(Type.Integer({ minimum: 0, maximum: 32767, description: 'the door (device ID) a door-scope version belongs to' })),
  gate: Type.Optional(Type.Object({
    passed: Type.Boolean({
      description: 'whether its calibration gate (the ajar self-check and DOOR_CALIBRATION_FLOOR) let it take over its door; ' +
        'a refused version is activated only with force: true'
    }),
    balancedAccuracy: Type.Optional(Type.Number({
      minimum: 0,
      maximum: 1,
      description: 'the open/closed balanced accuracy the gate judged (closed-or-ajar against open when ajar was accepted as closed)'
    })),
    refusedBy: Type.Optional(Type.Unsafe<'evaluation' | 'self-check' | 'floor'>({
      type: 'string',
      enum: ['evaluation', 'self-check', 'floor'],
      description: 'what refused it: a calibration too short to evaluate, the ajar self-check (it cannot tell ajar from closed), ' +
        'or DOOR_CALIBRATION_FLOOR'
    }))
  }, { description: 'a door version\'s calibration verdict; absent for global versions and door versions made before verdicts were kept' })),
  forced: Type.Optional(Type.Literal(true, {
    description: 'in an activation\'s answer: the version was refused by its calibration gate and activated with force: true'
  }))
})
export type ModelVersionInfo = Static<typeof ModelVersionInfo>

/** The last training failure, as /debug/get/training_failure reports it. */
export const TrainingFailure = Type.Object({
  at: Type.String({ format: 'date-time' }),
  message: Type.String(),
  version: Type.Optional(Type.String())
})
export type TrainingFailure = Static<typeof TrainingFailure>

/** Which TensorFlow.js backend runs the model. */
export const BackendInfo = Type.Object({
  requested: Type.Union([Type.Literal('auto'), Type.Literal('gpu'), Type.Literal('node'), Type.Literal('cpu')]),
  backend: Type.String({ description: 'tf.getBackend(): cpu, tensorflow, …' }),
  package: Type.String({ description: 'the npm package that provided it' }),
  tfjsVersion: Type.String()
})
export type BackendInfo = Static<typeof BackendInfo>
