/**
 * The shapes a door model travels in: the labelled input and the options of
 * a training, the meta that rebuilds a predictor besides the weights, the
 * trained model, and the layer names of the two heads in its saved topology.
 * Their own module, so the trainer (train.ts), the predictor (predictor.ts),
 * the pipeline (pipeline.ts) and the version store share them without
 * importing each other.
 */
import type * as tfjs from '@tensorflow/tfjs'
import type { DoorFrameFeatures } from '../../domain/door-window.js'
import type { HysteresisOptions } from '../../domain/door-hysteresis.js'
import type { Standardisation } from '../../domain/standardise.js'
import type { NoveltyOptions, NoveltySummary } from '../novelty.js'

/** The meta format the trainer writes and the predictor reads. */
export const DOOR_MODEL_FORMAT = 'doorsense-door-window/1'

/** Labelled frames in recording order (windows are drawn inside contiguous runs of one angle). */
export interface DoorTrainingInput {
  /** 106 values per frame (53 magnitudes, 53 phases). */
  frames: ReadonlyArray<ArrayLike<number>>
  /** The door angle of each frame, degrees. */
  angles: readonly number[]
}

/** Training options; every field has a measured default. */
export interface DoorTrainingOptions {
  /** k: frames per window. */
  window: number
  features: DoorFrameFeatures
  /** Frames between two training windows of a run (1 = every window). */
  stride: number
  epochs: number
  batchSize: number
  learningRate: number
  /** L2 on both heads' kernels, added to the loss. */
  l2: number
  /** Weight of the closed head's loss against the angle head's. */
  closedLossWeight: number
  hysteresis: HysteresisOptions
  novelty: NoveltyOptions
  seed: number
}

/** Everything besides the weights that a predictor needs; JSON-serialisable. */
export interface DoorModelMeta {
  format: typeof DOOR_MODEL_FORMAT
  /** k: frames per window. */
  window: number
  /** Per-frame inputs of a window. */
  featureSet: DoorFrameFeatures
  /** Window features: mean then std of each of the featureSet's values. */
  windowFeatures: 'mean+std'
  /** 2 × frame width. */
  inputSize: number
  /** Angle classes in output order, ascending degrees; 0 is closed. */
  labels: number[]
  /** Train statistics applied to every window before the heads and the novelty distance. */
  standardisation: Standardisation
  hysteresis: HysteresisOptions
  novelty: NoveltySummary
  /** The options the run used, defaults filled in. */
  options: DoorTrainingOptions
  trainFrames: number
  trainWindows: number
  /** Windows per angle used in training. */
  windowsPerAngle: Record<string, number>
  trainingSeconds: number
  /** Set by ml/door/calibration.ts (calibrateDoorModel) from a blocked hold-out: a DoorEvaluation with its ajar self-check. */
  evaluation?: unknown
  /** Set by ml/door/calibration.ts when a gate was given: the CalibrationVerdict (whether it may take over its door, and why). */
  gate?: unknown
}

/** A trained door model: tfjs artifacts (topology, weight specs and data) and its meta. */
export interface TrainedDoorModel {
  artifacts: tfjs.io.ModelArtifacts
  meta: DoorModelMeta
}

/** Layer names of the two heads (the saved topology's, read back by the predictor). */
export const ANGLE_HEAD = 'angle'
export const CLOSED_HEAD = 'closed'
