/**
 * The training computation itself, free of I/O, HTTP and state, so it runs
 * the same in the training worker, in the CLI and in tests. It receives the
 * tfjs module to use (the worker brings its own).
 *
 * The pipeline: blocked split → features → standardisation with train-part
 * statistics → a seeded network trained for a fixed number of epochs by a
 * plain Adam loop (no `model.fit`: it awaits between batches and shuffles with
 * an unseeded generator) → evaluation on the held-out tails.
 */
import type * as tfjs from '@tensorflow/tfjs'
import { Value } from '@sinclair/typebox/value'
import { evaluate } from '../../domain/evaluation.js'
import { inputMatrix } from '../../domain/features.js'
import { blockedSplit, blockedSplitOf } from '../../domain/split.js'
import { applyStandardisation, fitStandardisation } from '../../domain/standardise.js'
import { TrainingOptions as TrainingOptionsSchema, type TrainingOptions } from '../../schemas/model.js'
import type { EpochReport, HoldoutPredictions, ModelMeta, Tf, TrainedModel } from '../model-types.js'
import { checkTrainingSet, type TrainingSet } from '../training-set.js'
import { buildNetwork, kernelsOf, logitsOf, trainableVariablesOf } from './network.js'
import { predictionsFromProbabilities } from './predictor.js'
import { captureArtifacts } from '../artifacts.js'
import { buildWindowNovelty, type WindowNoveltyMeta } from '../novelty.js'
import { mulberry32, shuffled } from '../../domain/random.js'

/**
 * The defaults, chosen by measurement (bench/model-comparison.bench.ts on
 * session A's blocked split) and by principle, since they must carry over to
 * recordings nobody here has seen:
 * - features `magnitudes+phase-diff`: the one change that moves accuracy well
 *   beyond noise (raw phases carry a random per-packet offset, differences
 *   cancel it), for every architecture;
 * - architecture `softmax` (multinomial logistic regression): as good as the
 *   original net and the wider MLP on the same features (better, but within
 *   noise) at a fraction of their cost, convex — so the result barely depends
 *   on seed or epoch count — and with the fewest parameters to overfit a
 *   session;
 * - Adam, lr 1e-2, batch 64, 100 epochs, L2 2e-4: on a plateau (half the
 *   epochs or a tenth of the rate under-fit, twice the epochs, twice the batch
 *   or no L2 score the same); a small L2 keeps weights finite on data that
 *   happen to be separable. Early stopping on a blocked slice hurt (off).
 */
export const DEFAULT_TRAINING_OPTIONS: Readonly<Required<Omit<TrainingOptions, 'seed'>>> = Object.freeze({
  kind: 'csi',
  architecture: 'softmax',
  features: 'magnitudes+phase-diff',
  epochs: 100,
  batchSize: 64,
  learningRate: 0.01,
  l2: 2e-4,
  holdout: 0.2,
  earlyStopping: false
})

/** Share of each label's train rows held back for early stopping (the tail of the train part). */
export const EARLY_STOPPING_SHARE = 0.2
/** Epochs without a better validation loss before early stopping stops. */
export const EARLY_STOPPING_PATIENCE = 10
/** Smallest drop of the validation loss that counts as better. */
export const EARLY_STOPPING_MIN_DELTA = 1e-4

/** Fills in defaults and validates combinations. @throws Error naming the bad option */
export function resolveTrainingOptions (options: TrainingOptions = {}): ModelMeta['options'] {
  if (!Value.Check(TrainingOptionsSchema, options)) {
    const error = Value.Errors(TrainingOptionsSchema, options).First()
    const field = error?.path.replace(/^\//, '') || 'options'
    throw new Error(`training option ${field}: ${error?.message ?? 'invalid'}${error && error.path ? ` (got ${JSON.stringify(error.value)})` : ''}`)
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as TrainingOptions
  const resolved: ModelMeta['options'] = { ...DEFAULT_TRAINING_OPTIONS, ...defined }
  if (resolved.kind === 'rssi') {
    if (defined.features !== undefined && defined.features !== 'raw') {
      throw new Error(`training option features: "${defined.features}" needs CSI frames; ` +
        'an RSSI model reads its one value as it is (use "raw" or leave it out)')
    }
    resolved.features = 'raw'
  }
  return resolved
}

/**
 * Trains a model: blocked split (each label's last `holdout` share of rows is
 * the test part), features extracted and standardised with train-part
 * statistics, fixed epochs (early stopping optional), evaluation on the test
 * part. Disposes every tensor it made.
 * @throws Error with a clear message when there are too few rows or labels
 */
export async function trainModel (tf: Tf, input: TrainingSet, options: TrainingOptions = {}, onEpoch?: (report: EpochReport) => void): Promise<TrainedModel> {
  const started = performance.now()
  if (options.kind !== undefined && options.kind !== input.kind) {
    throw new Error(`training option kind "${options.kind}" does not match the ${input.kind} rows given`)
  }
  const resolved = resolveTrainingOptions({ ...options, kind: input.kind })
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31)
  const runOptions: ModelMeta['options'] = { ...resolved, seed }
  const labels = checkTrainingSet(input)
  const classOf = new Map(labels.map((label, i) => [label, i]))

  const split = blockedSplit(input.angles, runOptions.holdout)
  const { train: fitRows, test: validationRows } = runOptions.earlyStopping
    ? blockedSplitOf(split.train, input.angles, EARLY_STOPPING_SHARE)
    : { train: split.train, test: [] }

  const trainPart = inputMatrix(input.kind, runOptions.features, input.features, split.train)
  const standardisation = fitStandardisation(trainPart.matrix, trainPart.width)
  const width = trainPart.width
  const prepare = (rows: number[]): RowSet => ({
    matrix: applyStandardisation(inputMatrix(input.kind, runOptions.features, input.features, rows).matrix, standardisation),
    classes: Int32Array.from(rows, (row) => classOf.get(input.angles[row]) as number),
    count: rows.length
  })
  const fit = prepare(fitRows)
  const validation = prepare(validationRows)
  const test = prepare(split.test)
  // what the per-epoch report watches: the early-stopping slice, else the hold-out
  const watched = runOptions.earlyStopping ? validation : test

  const model = buildNetwork(tf, { architecture: runOptions.architecture, inputSize: width, classes: labels.length, seed })
  const optimizer = tf.train.adam(runOptions.learningRate)
  let best: tfjs.Tensor[] | undefined
  try {
    const variables = trainableVariablesOf(model)
    const kernels = kernelsOf(model)
    const random = mulberry32(seed)
    let bestLoss = Number.POSITIVE_INFINITY
    let sinceBest = 0
    let epochsTrained = 0
    for (let epoch = 1; epoch <= runOptions.epochs; epoch++) {
      const { loss, accuracy } = trainEpoch(tf, model, optimizer, variables, kernels, fit, width, labels.length, runOptions, random)
      epochsTrained = epoch
      if (!Number.isFinite(loss)) {
        throw new Error(`training diverged in epoch ${epoch} (loss ${loss}); try a lower learning rate than ${runOptions.learningRate}`)
      }
      const report: EpochReport = { epoch, epochs: runOptions.epochs, loss, accuracy }
      if (watched.count > 0) {
        const scored = score(tf, model, watched, width, labels.length)
        report.validationAccuracy = scored.accuracy
        report.validationLoss = scored.loss
      }
      onEpoch?.(report)
      if (runOptions.earlyStopping && report.validationLoss !== undefined) {
        if (report.validationLoss < bestLoss - EARLY_STOPPING_MIN_DELTA) {
          bestLoss = report.validationLoss
          sinceBest = 0
          for (const tensor of best ?? []) tensor.dispose()
          best = variables.map((variable) => variable.clone())
        } else if (++sinceBest >= EARLY_STOPPING_PATIENCE) {
          break
        }
      }
      // let the host (worker messages, CLI progress) breathe between epochs
      await new Promise((resolve) => setImmediate(resolve))
    }
    if (best) variables.forEach((variable, i) => variable.assign((best as tfjs.Tensor[])[i]))

    const meta: ModelMeta = {
      kind: input.kind,
      labels,
      featureSet: runOptions.features,
      inputSize: width,
      standardisation,
      options: runOptions,
      epochsTrained,
      trainingSeconds: 0
    }
    if (input.kind === 'csi') Object.assign(meta, globalNovelty(input, split.train))
    let holdout: HoldoutPredictions | undefined
    if (test.count > 0) {
      const predictions = predictionsFromProbabilities(probabilities(tf, model, test.matrix, test.count, width), labels)
      meta.evaluation = evaluate(labels, split.test.map((row) => input.angles[row]), predictions.map((p) => p.angle), split.train.length)
      holdout = { rows: split.test, predictions }
    }
    const artifacts = await captureArtifacts(tf, model)
    meta.trainingSeconds = (performance.now() - started) / 1000
    return holdout ? { artifacts, meta, holdout } : { artifacts, meta }
  } finally {
    for (const tensor of best ?? []) tensor.dispose()
    optimizer.dispose()
    model.dispose()
  }
}

/**
 * The window novelty of the rows the model learned from (their recording
 * order kept): what lets a door on this model say that its frames are unlike
 * them; or why there is none (the rows hold no long enough run of one label).
 */
function globalNovelty (input: TrainingSet, rows: readonly number[]): { novelty: WindowNoveltyMeta } | { noveltyProblem: string } {
  try {
    return { novelty: buildWindowNovelty(rows.map((row) => input.features[row]), rows.map((row) => input.angles[row])) }
  } catch (err) {
    return { noveltyProblem: (err as Error).message }
  }
}

/** Standardised rows of one part and their class indices. */
interface RowSet {
  matrix: Float32Array
  classes: Int32Array
  count: number
}

/** One pass over the fit rows in a seeded random order, one Adam step per batch. */
function trainEpoch (tf: Tf, model: tfjs.Sequential, optimizer: tfjs.Optimizer, variables: tfjs.Variable[], kernels: tfjs.Variable[],
  fit: RowSet, width: number, classCount: number, options: ModelMeta['options'], random: () => number): { loss: number, accuracy: number } {
  const order = shuffled(fit.count, random)
  let lossSum = 0
  let correct = 0
  for (let start = 0; start < fit.count; start += options.batchSize) {
    const size = Math.min(options.batchSize, fit.count - start)
    // fresh buffers per batch: the cpu backend keeps the array a tensor is made from
    const xs = new Float32Array(size * width)
    const ys = new Float32Array(size * classCount)
    const classes = new Int32Array(size)
    for (let b = 0; b < size; b++) {
      const row = order[start + b]
      xs.set(fit.matrix.subarray(row * width, (row + 1) * width), b * width)
      classes[b] = fit.classes[row]
      ys[b * classCount + classes[b]] = 1
    }
    let scores: tfjs.Tensor | undefined
    const cost = tf.tidy(() => {
      const x = tf.tensor2d(xs, [size, width])
      const y = tf.tensor2d(ys, [size, classCount])
      return optimizer.minimize(() => {
        const logits = logitsOf(model, x)
        // the argmax of the logits is the argmax of the probabilities
        scores = tf.keep(logits)
        const crossEntropy = tf.losses.softmaxCrossEntropy(y, logits)
        if (options.l2 === 0) return crossEntropy as tfjs.Scalar
        const penalty = tf.addN(kernels.map((kernel) => tf.sum(tf.square(kernel))))
        return tf.add(crossEntropy, tf.mul(options.l2, penalty)) as tfjs.Scalar
      }, true, variables) as tfjs.Scalar
    })
    lossSum += cost.dataSync()[0] * size
    cost.dispose()
    if (scores) {
      correct += countCorrect(scores.dataSync() as Float32Array, classes, classCount)
      scores.dispose()
    }
  }
  return { loss: lossSum / fit.count, accuracy: correct / fit.count }
}

/** Class probabilities of standardised rows, in one inference call. */
function probabilities (tf: Tf, model: tfjs.LayersModel, matrix: Float32Array, count: number, width: number): Float32Array {
  let values: Float32Array = new Float32Array(0)
  tf.tidy(() => {
    const output = model.predict(tf.tensor2d(matrix, [count, width]), { batchSize: Math.max(1, count) }) as tfjs.Tensor
    values = output.dataSync() as Float32Array
  })
  return values
}

/** Accuracy and mean cross-entropy of the model on a part (inference mode). */
function score (tf: Tf, model: tfjs.LayersModel, part: RowSet, width: number, classCount: number): { accuracy: number, loss: number } {
  const values = probabilities(tf, model, part.matrix, part.count, width)
  let loss = 0
  for (let r = 0; r < part.count; r++) loss -= Math.log(Math.max(values[r * classCount + part.classes[r]], 1e-7))
  return { accuracy: countCorrect(values, part.classes, classCount) / part.count, loss: loss / part.count }
}

function countCorrect (values: Float32Array, classes: Int32Array, classCount: number): number {
  let correct = 0
  for (let r = 0; r < classes.length; r++) {
    let best = 0
    for (let c = 1; c < classCount; c++) if (values[r * classCount + c] > values[r * classCount + best]) best = c
    if (best === classes[r]) correct++
  }
  return correct
}
