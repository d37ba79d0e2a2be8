/**
 * The shapes a trained model travels in: the tfjs module type, a model's
 * meta (what rebuilds a predictor besides the weights), the trained model
 * and the epoch report. Their own module, so the trainer, the predictor, the
 * network and the version store share them without importing each other.
 */
import type * as tfjs from '@tensorflow/tfjs'
import type { Standardisation } from '../domain/standardise.js'
import type { Evaluation, FeatureSet, ModelKind, Prediction, TrainingOptions } from '../schemas/model.js'
import type { DoorModelMeta } from './door/model-types.js'
import type { WindowNoveltyMeta } from './novelty.js'

/** The tfjs module a computation runs on (the worker brings its own). */
export type Tf = typeof tfjs

/** Everything needed to rebuild a predictor besides the weights. */
export interface ModelMeta {
  kind: ModelKind
  /** Class angles in output order. */
  labels: number[]
  featureSet: FeatureSet
  /** Model input width after feature extraction. */
  inputSize: number
  /** Train-part statistics applied to every input before the network. */
  standardisation: Standardisation
  /** The options the run actually used (defaults filled in, and the seed drawn when none was given). */
  options: Required<Omit<TrainingOptions, 'seed'>> & { seed?: number }
  /** Epochs actually run (fewer than options.epochs when early stopping stopped). */
  epochsTrained?: number
  /** Blocked hold-out evaluation; absent when holdout was 0. */
  evaluation?: Evaluation
  /**
   * Window novelty of its training frames (ml/novelty.ts): lets a door on
   * this model say its frames are unlike anything the model learned (another
   * room). Absent for RSSI models and models trained before it was kept.
   */
  novelty?: WindowNoveltyMeta
  /** Why a CSI model carries no novelty (its runs of one label were too short), when it does not. */
  noveltyProblem?: string
  trainingSeconds: number
}

/** The hold-out rows and what the trained model said about each, in order. */
export interface HoldoutPredictions {
  /** Indices into the input rows (each label's tail, in insertion order). */
  rows: number[]
  predictions: Prediction[]
}

/** A trained network (as tfjs model artifacts: topology + weight specs + weight data) and its meta. */
export interface TrainedModel {
  artifacts: tfjs.io.ModelArtifacts
  meta: ModelMeta
  /** Per-row answers on the hold-out (absent when holdout was 0), e.g. to replay them through the door-state smoother. */
  holdout?: HoldoutPredictions
}

export interface EpochReport {
  epoch: number
  epochs: number
  /** Mean training loss (cross-entropy + L2) over the epoch's batches. */
  loss: number
  /** Training accuracy over the epoch's batches. */
  accuracy: number
  /**
   * Accuracy on the early-stopping slice when early stopping, else on the
   * hold-out (reported only: with fixed epochs it decides nothing).
   */
  validationAccuracy?: number
  validationLoss?: number
}

/** What a version stores as its meta: a global per-frame model's, or a door's windowed model's. */
export type StoredMeta = ModelMeta | DoorModelMeta

/** Anything the version store can write: tfjs artifacts and a meta. */
export interface StorableModel {
  artifacts: tfjs.io.ModelArtifacts
  meta: StoredMeta
}

/** Whether a stored meta is a door's windowed model. */
export function isDoorMeta (meta: StoredMeta): meta is DoorModelMeta {
  return 'format' in meta
}
