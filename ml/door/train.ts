/**
 * The windowed door-state engine (issue 12): per device, a sliding window of
 * the last k frames → window features (per-feature mean and std) → a linear
 * model with two heads (angle over the calibrated angles; a class-weighted
 * closed/open head that decides `state`) plus a novelty score (distance to the
 * calibration windows) → hysteresis (domain/door-hysteresis.ts). Its parts:
 *
 * - train.ts (here), {@link trainDoorModel}: trains on one door's calibration
 *   (or any labelled rows in recording order), in seconds, deterministic for
 *   a seed;
 * - predictor.ts, `DoorPredictor`: a loaded model; `predict` answers many
 *   windows (of many devices) in one tensor call;
 * - pipeline.ts, `DoorPipeline`: what a server keeps per device (window +
 *   hysteresis); the caller batches many devices' windows into one predict
 *   call and feeds each answer to its device's hysteresis;
 * - model-types.ts: the meta, the trained model, the options they share.
 *
 * No I/O, no HTTP; the tfjs module is passed in (a worker brings its own).
 */
import type * as tfjs from '@tensorflow/tfjs'
import { doorFrameFeatures, MAX_WINDOW, MIN_WINDOW, runWindows } from '../../domain/door-window.js'
import { checkHysteresis, DEFAULT_HYSTERESIS, type HysteresisOptions } from '../../domain/door-hysteresis.js'
import { FEATURES } from '../../domain/frames.js'
import { angleCoverage, angleProblem, CLOSED_ANGLE, countByAngle } from '../../domain/labels.js'
import { fitStandardisation } from '../../domain/standardise.js'
import { checkNoveltyOptions, DEFAULT_NOVELTY, standardiseCopy, summariseWindows, type NoveltyOptions } from '../novelty.js'
import { captureArtifacts } from '../artifacts.js'
import { mulberry32, shuffled } from '../../domain/random.js'
import type { Tf } from '../model-types.js'
import {
  ANGLE_HEAD, CLOSED_HEAD, DOOR_MODEL_FORMAT, type DoorModelMeta, type DoorTrainingInput, type DoorTrainingOptions, type TrainedDoorModel
} from './model-types.js'

/**
 * The defaults, measured with bench/door-model.bench.ts on session A's
 * blocked split (3 seeds; bench/results/door-model.json):
 * - features `centred-log-magnitudes+phase-diff`: the one big change; door
 *   state 7-class .72 / open-closed balanced .85 at k 25, against .47 / .48
 *   with plain magnitudes and .40 / .42 with log-magnitudes (centring takes
 *   out the frame's overall gain, which drifts within a session);
 * - k 25: best of 10/15/20/25 with centred features (door .49, .63, .68, .72);
 * - 30 epochs, L2 1e-3, Adam 1e-2, batch 64, stride 1: on a plateau (×3
 *   epochs .73 at 3× the time; ÷2 epochs .67, no L2 .65, stride 5 .59);
 * - hysteresis enter 3, leave 5 (domain/door-hysteresis.ts): best with
 *   enter 2/leave 3 and 5/8 within noise; leave 15 or enter 8 cost .03–.06;
 * - novelty: 5-NN on ≤ 64 standardised windows, threshold the .99 quantile
 *   of held-out windows: AUC 1.00 on both shifted sets, no held-out window
 *   flagged, the same as with 256 rows (and the .95 quantile), at a quarter
 *   of the scan, which is most of a window's cost (bench/door-state.bench.ts);
 *   × 1.5 and swing windows in the summary (ml/novelty.ts, issue 19):
 *   room for the door's own later frames and for its moves.
 */
export const DEFAULT_DOOR_TRAINING: Readonly<DoorTrainingOptions> = Object.freeze({
  window: 25,
  features: 'centred-log-magnitudes+phase-diff',
  stride: 1,
  epochs: 30,
  batchSize: 64,
  learningRate: 0.01,
  l2: 1e-3,
  closedLossWeight: 1,
  hysteresis: DEFAULT_HYSTERESIS,
  novelty: DEFAULT_NOVELTY,
  seed: 1
})

/** Fills in defaults and checks values. @throws RangeError naming the bad option */
export function resolveDoorTraining (
  options: Partial<Omit<DoorTrainingOptions, 'novelty' | 'hysteresis'>> & { novelty?: Partial<NoveltyOptions>, hysteresis?: Partial<HysteresisOptions> } = {}
): DoorTrainingOptions {
  const defined = <T extends object>(value: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>
  const resolved: DoorTrainingOptions = {
    ...DEFAULT_DOOR_TRAINING,
    ...defined(options),
    hysteresis: { ...DEFAULT_DOOR_TRAINING.hysteresis, ...defined(options.hysteresis) },
    novelty: { ...DEFAULT_DOOR_TRAINING.novelty, ...defined(options.novelty) }
  }
  const integer = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`door training option ${name} must be an integer in ${min}..${max}, got ${value}`)
    }
  }
  const real = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isFinite(value) || value < min || value > max) {
      throw new RangeError(`door training option ${name} must be a number in ${min}..${max}, got ${value}`)
    }
  }
  integer('window', resolved.window, MIN_WINDOW, MAX_WINDOW)
  integer('stride', resolved.stride, 1, 1000)
  integer('epochs', resolved.epochs, 1, 1000)
  integer('batchSize', resolved.batchSize, 1, 4096)
  real('learningRate', resolved.learningRate, 1e-6, 1)
  real('l2', resolved.l2, 0, 1)
  real('closedLossWeight', resolved.closedLossWeight, 0, 100)
  integer('seed', resolved.seed, -(2 ** 31), 2 ** 31 - 1)
  checkNoveltyOptions(resolved.novelty)
  checkHysteresis(resolved.hysteresis)
  // a swing fills a window with two positions; it must not count as novelty
  if (resolved.hysteresis.novelAfter <= resolved.window) {
    throw new RangeError(`door training option hysteresis.novelAfter must be longer than a window (${resolved.window} frames), ` +
      `got ${resolved.hysteresis.novelAfter}`)
  }
  if (!['magnitudes+phase-diff', 'log-magnitudes+phase-diff', 'centred-log-magnitudes+phase-diff'].includes(resolved.features)) {
    throw new RangeError(`door training option features: unknown frame feature set ${JSON.stringify(resolved.features)}`)
  }
  return resolved
}

/**
 * Rows per angle the trainer needs: two windows' worth, one for the
 * novelty summary and one for the held-out windows its threshold comes from.
 */
export function minimumFramesPerAngle (window: number): number {
  return 2 * window
}

/**
 * Trains a door model on labelled frames in recording order:
 * 1. frame inputs (options.features), windows of k frames only inside
 *    contiguous runs of one angle (stride options.stride);
 * 2. standardisation fitted on those windows;
 * 3. the two heads (one Dense softmax over the angles, one Dense sigmoid for
 *    closed, its loss weighted so closed and open weigh the same; the angle
 *    loss likewise balanced over angles), L2 on the kernels, Adam, fixed
 *    epochs, seeded init and batch order;
 * 4. novelty (ml/novelty.ts summariseWindows): each angle's tail is held
 *    out of the summary; the summary is an evenly spaced sample of the other
 *    windows plus windows straddling two positions (a swing); the threshold
 *    is a high quantile of the held-out windows' distance to it × a margin.
 *    The heads train on every window.
 * Disposes every tensor it made.
 * @throws Error with a message a user can act on (too few frames, no closed or no open angle, bad frame)
 */
export async function trainDoorModel (tf: Tf, input: DoorTrainingInput, options: Parameters<typeof resolveDoorTraining>[0] = {}): Promise<TrainedDoorModel> {
  const started = performance.now()
  const o = resolveDoorTraining(options)
  const labels = checkInput(input, o.window)
  const classOf = new Map(labels.map((label, i) => [label, i]))
  const inputs = input.frames.map((frame) => doorFrameFeatures(frame, o.features))

  const all = runWindows(inputs, input.angles, { size: o.window, stride: o.stride })
  if (all.count === 0) throw new Error(`no window of ${o.window} consecutive frames of one angle: record longer runs`)
  const standardisation = fitStandardisation(all.matrix, all.width)
  const trainMatrix = standardiseCopy(all.matrix, standardisation)
  const novelty = summariseWindows(inputs, input.angles, o.window, (matrix) => standardiseCopy(matrix, standardisation), o.novelty)

  const classes = Int32Array.from(all.labels, (angle) => classOf.get(angle) as number)
  const { artifacts } = await fitHeads(tf, trainMatrix, all.width, classes, labels, o)
  const windowsPerAngle: Record<string, number> = {}
  for (const angle of all.labels) windowsPerAngle[String(angle)] = (windowsPerAngle[String(angle)] ?? 0) + 1
  const meta: DoorModelMeta = {
    format: DOOR_MODEL_FORMAT,
    window: o.window,
    featureSet: o.features,
    windowFeatures: 'mean+std',
    inputSize: all.width,
    labels,
    standardisation,
    hysteresis: { ...o.hysteresis },
    novelty,
    options: o,
    trainFrames: input.frames.length,
    trainWindows: all.count,
    windowsPerAngle,
    trainingSeconds: (performance.now() - started) / 1000
  }
  return { artifacts, meta }
}

/** Validates frames and angles; returns the angle classes (ascending). */
function checkInput (input: DoorTrainingInput, window: number): number[] {
  if (input.frames.length !== input.angles.length) throw new Error(`${input.frames.length} frames but ${input.angles.length} angles`)
  for (let row = 0; row < input.frames.length; row++) {
    const problem = angleProblem(input.angles[row])
    if (problem) throw new Error(`frame ${row}: ${problem}`)
    const frame = input.frames[row]
    if (frame.length !== FEATURES) throw new Error(`frame ${row}: a CSI frame must hold ${FEATURES} values, got ${frame.length}`)
    for (let i = 0; i < FEATURES; i++) if (!Number.isFinite(frame[i])) throw new Error(`frame ${row}: value ${i} is not a finite number (${frame[i]})`)
  }
  const counts = countByAngle(input.angles)
  const need = minimumFramesPerAngle(window)
  const { hasClosed, openAngles, short } = angleCoverage(counts, need)
  const labels = [...counts.keys()].sort((a, b) => a - b)
  if (!hasClosed || openAngles.length === 0) {
    const got = labels.length ? labels.map((a) => `${a}°`).join(', ') : 'no frames'
    throw new Error(`a door model needs frames of the closed door (0°) and of at least one open angle, got ${got}`)
  }
  if (short.length) {
    const got = short.map((a) => `${counts.get(a)} for ${a}°`).join(', ')
    throw new Error(`too few frames: each angle needs at least ${need} (two windows of ${window}), got ${got}`)
  }
  return labels
}

/**
 * Builds the two-head network: input → Dense(labels) → softmax (angle) and
 * input → Dense(1) → sigmoid (closed). A functional tf.model, so the saved
 * artifacts answer both heads on their own.
 */
export function buildDoorNetwork (tf: Tf, inputSize: number, classes: number, seed: number): tfjs.LayersModel {
  const input = tf.input({ shape: [inputSize], name: 'window' })
  const angleHead = tf.layers.dense({ units: classes, name: ANGLE_HEAD, kernelInitializer: tf.initializers.glorotUniform({ seed }) })
  const angleLogits = angleHead.apply(input) as tfjs.SymbolicTensor
  const angle = tf.layers.activation({ activation: 'softmax', name: 'angle_probabilities' }).apply(angleLogits) as tfjs.SymbolicTensor
  const closedHead = tf.layers.dense({ units: 1, name: CLOSED_HEAD, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })
  const closedLogit = closedHead.apply(input) as tfjs.SymbolicTensor
  const closed = tf.layers.activation({ activation: 'sigmoid', name: 'closed_probability' }).apply(closedLogit) as tfjs.SymbolicTensor
  return tf.model({ inputs: input, outputs: [angle, closed], name: 'door_window' })
}

/** Fits both heads with a plain seeded Adam loop (model.fit shuffles with an unseeded generator). */
async function fitHeads (
  tf: Tf,
  matrix: Float32Array,
  width: number,
  classes: Int32Array,
  labels: readonly number[],
  o: DoorTrainingOptions
): Promise<{ artifacts: tfjs.io.ModelArtifacts }> {
  const count = classes.length
  const classCount = labels.length
  const closedIndex = labels.indexOf(CLOSED_ANGLE)
  // balanced weights: each angle (and closed vs open) weighs the same in total
  const perClass = new Float64Array(classCount)
  let closedCount = 0
  for (let i = 0; i < count; i++) {
    perClass[classes[i]]++
    if (classes[i] === closedIndex) closedCount++
  }
  const angleWeight = Float32Array.from(perClass, (n) => n ? count / (classCount * n) : 0)
  const closedWeight = [count / (2 * (count - closedCount)), count / (2 * closedCount)]

  const model = buildDoorNetwork(tf, width, classCount, o.seed)
  const optimizer = tf.train.adam(o.learningRate)
  try {
    const angleLayer = model.getLayer(ANGLE_HEAD)
    const closedLayer = model.getLayer(CLOSED_HEAD)
    const variables = model.trainableWeights.map((weight) => weight.read() as tfjs.Variable)
    const kernels = model.trainableWeights.filter((weight) => /kernel$/.test(weight.originalName)).map((weight) => weight.read() as tfjs.Variable)
    const random = mulberry32(o.seed)
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = shuffled(count, random)
      let lossSum = 0
      for (let start = 0; start < count; start += o.batchSize) {
        const size = Math.min(o.batchSize, count - start)
        // fresh buffers per batch: the cpu backend keeps the array a tensor is made from
        const xs = new Float32Array(size * width)
        const ys = new Float32Array(size * classCount)
        const yClosed = new Float32Array(size)
        const wAngle = new Float32Array(size)
        const wClosed = new Float32Array(size)
        for (let b = 0; b < size; b++) {
          const row = order[start + b]
          xs.set(matrix.subarray(row * width, (row + 1) * width), b * width)
          const c = classes[row]
          ys[b * classCount + c] = 1
          const closed = c === closedIndex ? 1 : 0
          yClosed[b] = closed
          wAngle[b] = angleWeight[c]
          wClosed[b] = closedWeight[closed]
        }
        const cost = tf.tidy(() => {
          const x = tf.tensor2d(xs, [size, width])
          const y = tf.tensor2d(ys, [size, classCount])
          const yc = tf.tensor2d(yClosed, [size, 1])
          const wa = tf.tensor1d(wAngle)
          const wc = tf.tensor2d(wClosed, [size, 1])
          return optimizer.minimize(() => {
            const angleLogits = angleLayer.apply(x) as tfjs.Tensor
            const closedLogit = closedLayer.apply(x) as tfjs.Tensor
            const angleLoss = tf.losses.softmaxCrossEntropy(y, angleLogits, wa, 0, tf.Reduction.MEAN)
            const closedLoss = tf.losses.sigmoidCrossEntropy(yc, closedLogit, wc, 0, tf.Reduction.MEAN)
            let loss = tf.add(angleLoss, tf.mul(o.closedLossWeight, closedLoss))
            if (o.l2 > 0) loss = tf.add(loss, tf.mul(o.l2, tf.addN(kernels.map((kernel) => tf.sum(tf.square(kernel))))))
            return loss as tfjs.Scalar
          }, true, variables) as tfjs.Scalar
        })
        lossSum += cost.dataSync()[0] * size
        cost.dispose()
      }
      if (!Number.isFinite(lossSum)) throw new Error(`door model training diverged in epoch ${epoch}; try a lower learning rate than ${o.learningRate}`)
      // let the host (worker messages, progress) breathe between epochs
      await new Promise((resolve) => setImmediate(resolve))
    }
    return { artifacts: await captureArtifacts(tf, model) }
  } finally {
    optimizer.dispose()
    model.dispose()
  }
}
