/**
 * CONTRACT (to be implemented): the training computation itself, free of I/O,
 * HTTP and state, so it runs the same in the training worker, in the CLI and
 * in tests. It receives the tfjs module to use (the worker brings its own).
 */
import type * as tfjs from '@tensorflow/tfjs'
import type { Evaluation, FeatureSet, ModelKind, TrainingOptions } from '../../schemas/model.js'

export type Tf = typeof tfjs

/** Labelled rows in insertion order (the blocked split depends on that order). */
export interface TrainerInput {
  kind: ModelKind
  /** 106 CSI features per row (or 1 RSSI value for kind "rssi"). */
  features: Float32Array[]
  /** Door angle of each row, in degrees. */
  angles: number[]
}

/** Everything needed to rebuild a predictor besides the weights. */
export interface ModelMeta {
  kind: ModelKind
  /** Class angles in output order. */
  labels: number[]
  featureSet: FeatureSet
  /** Model input width after feature extraction. */
  inputSize: number
  /** Train-part statistics applied to every input before the network. */
  standardisation: { mean: number[], std: number[] }
  /** The options the run actually used (defaults filled in). */
  options: Required<Omit<TrainingOptions, 'seed'>> & { seed?: number }
  /** Blocked hold-out evaluation; absent when holdout was 0. */
  evaluation?: Evaluation
  trainingSeconds: number
}

/** A trained network (as tfjs model artifacts: topology + weight specs + weight data) and its meta. */
export interface TrainedModel {
  artifacts: tfjs.io.ModelArtifacts
  meta: ModelMeta
}

export interface EpochReport {
  epoch: number
  epochs: number
  loss: number
  accuracy: number
  validationAccuracy?: number
}

/** The defaults, chosen by measurement (see bench/model-comparison.bench.ts). */
export declare const DEFAULT_TRAINING_OPTIONS: Required<Omit<TrainingOptions, 'seed'>>

/** Fills in defaults and validates combinations. @throws Error naming the bad option */
export declare function resolveTrainingOptions (options?: TrainingOptions): ModelMeta['options']

/**
 * Trains a model: blocked split (each label's last `holdout` share of rows is
 * the test part), features extracted and standardised with train-part
 * statistics, fixed epochs (early stopping optional), evaluation on the test
 * part. Disposes every tensor it made.
 * @throws Error with a clear message when there are too few rows or labels
 */
export declare function trainModel (tf: Tf, input: TrainerInput, options?: TrainingOptions, onEpoch?: (report: EpochReport) => void): Promise<TrainedModel>
