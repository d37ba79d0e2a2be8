/**
 * The windowed door-state engine (issue 12): per device, a sliding window of
 * the last k frames → window features (per-feature mean and std) → a linear
 * model with two heads (angle over the calibrated angles; a class-weighted
 * closed/open head that decides `state`) plus a novelty score (distance to the
 * calibration windows) → hysteresis (domain/door-hysteresis.ts).
 *
 * - {@link trainDoorModel}: trains on one door's calibration (or any labelled
 *   rows in recording order), in seconds, deterministic for a seed.
 * - {@link DoorPredictor}: a loaded model; `predict` answers many windows (of
 *   many devices) in one tensor call.
 * - {@link DoorPipeline}: what a server keeps per device (window +
 *   hysteresis); the caller batches many devices' windows into one predict
 *   call and feeds each answer to its device's hysteresis.
 *
 * No I/O, no HTTP; the tfjs module is passed in (a worker brings its own).
 */
import type * as tfjs from '@tensorflow/tfjs'
import { DOOR_FRAME_WIDTH, doorFrameFeatures, doorFrameFeaturesInto, FrameWindow, MAX_WINDOW, MIN_WINDOW, runWindows, type DoorFrameFeatures } from '../../domain/door-window.js'
import { checkHysteresis, DEFAULT_HYSTERESIS, DoorHysteresis, type HysteresisDoor, type HysteresisOptions, type WindowObservation } from '../../domain/door-hysteresis.js'
import { FEATURES } from '../../domain/frames.js'
import { angleProblem, CLOSED_ANGLE, labelSet } from '../../domain/labels.js'
import { fitStandardisation, type Standardisation } from '../../domain/standardise.js'
import { checkNoveltyOptions, DEFAULT_NOVELTY, NoveltyScorer, standardiseCopy, summariseWindows, type NoveltyOptions, type NoveltySummary } from '../novelty.js'
import { captureArtifacts } from '../artifacts.js'
import { mulberry32, shuffled } from '../../domain/random.js'

export type Tf = typeof tfjs

/** The meta format this module writes and reads. */
export const DOOR_MODEL_FORMAT = 'doorsense-door-window/1'

/** Labelled frames in recording order (windows are drawn inside contiguous runs of one angle). */
export interface DoorTrainingInput {
  /** 106 values per frame (53 magnitudes, 53 phases). */
  frames: ReadonlyArray<ArrayLike<number>>
  /** The door angle of each frame, degrees. */
  angles: readonly number[]
}

export type { NoveltyOptions, NoveltySummary } from '../novelty.js'
export { knnDistances } from '../novelty.js'

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

/** One window's answer. */
export interface DoorWindowPrediction extends WindowObservation {
  /** Degrees: 0 when `state` is closed, else the most likely open angle. */
  angle: number
  /** The angle head's probabilities, in the order of meta.labels. */
  angleProbabilities: number[]
  /** The closed head's probability that the door is closed. */
  closedProbability: number
  /** closed when closedProbability ≥ .5 (the head is trained class-balanced). */
  state: 'open' | 'closed'
  /** Probability of `state`. */
  confidence: number
  /** Mean distance to the nearest calibration windows over the threshold: above 1 is novel. */
  novelty: number
  novel: boolean
}

/** Fills in defaults and checks values. @throws RangeError naming the bad option */
export function resolveDoorTraining (options: Partial<Omit<DoorTrainingOptions, 'novelty' | 'hysteresis'>> & { novelty?: Partial<NoveltyOptions>, hysteresis?: Partial<HysteresisOptions> } = {}): DoorTrainingOptions {
  const defined = <T extends object>(value: T | undefined): Partial<T> => Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>
  const resolved: DoorTrainingOptions = {
    ...DEFAULT_DOOR_TRAINING,
    ...defined(options),
    hysteresis: { ...DEFAULT_DOOR_TRAINING.hysteresis, ...defined(options.hysteresis) },
    novelty: { ...DEFAULT_DOOR_TRAINING.novelty, ...defined(options.novelty) }
  }
  const integer = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`door training option ${name} must be an integer in ${min}..${max}, got ${value}`)
  }
  const real = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isFinite(value) || value < min || value > max) throw new RangeError(`door training option ${name} must be a number in ${min}..${max}, got ${value}`)
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
  if (resolved.hysteresis.novelAfter <= resolved.window) throw new RangeError(`door training option hysteresis.novelAfter must be longer than a window (${resolved.window} frames), got ${resolved.hysteresis.novelAfter}`)
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

function countBy (values: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  return counts
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
  const labels = labelSet(input.angles)
  if (!labels.includes(CLOSED_ANGLE) || labels.length < 2) {
    throw new Error(`a door model needs frames of the closed door (0°) and of at least one open angle, got ${labels.length ? labels.map((a) => `${a}°`).join(', ') : 'no frames'}`)
  }
  const counts = countBy(input.angles)
  const need = minimumFramesPerAngle(window)
  const short = labels.filter((label) => (counts.get(label) as number) < need)
  if (short.length) throw new Error(`too few frames: each angle needs at least ${need} (two windows of ${window}), got ${short.map((a) => `${counts.get(a)} for ${a}°`).join(', ')}`)
  return labels
}

/** Layer names of the two heads (the saved topology's, read back by the predictor). */
const ANGLE_HEAD = 'angle'
const CLOSED_HEAD = 'closed'

/**
 * Builds the two-head network: input → Dense(labels) → softmax (angle) and
 * input → Dense(1) → sigmoid (closed). A functional tf.model, so the saved
 * artifacts answer both heads on their own.
 */
export function buildDoorNetwork (tf: Tf, inputSize: number, classes: number, seed: number): tfjs.LayersModel {
  const input = tf.input({ shape: [inputSize], name: 'window' })
  const angleLogits = tf.layers.dense({ units: classes, name: ANGLE_HEAD, kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input) as tfjs.SymbolicTensor
  const angle = tf.layers.activation({ activation: 'softmax', name: 'angle_probabilities' }).apply(angleLogits) as tfjs.SymbolicTensor
  const closedLogit = tf.layers.dense({ units: 1, name: CLOSED_HEAD, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(input) as tfjs.SymbolicTensor
  const closed = tf.layers.activation({ activation: 'sigmoid', name: 'closed_probability' }).apply(closedLogit) as tfjs.SymbolicTensor
  return tf.model({ inputs: input, outputs: [angle, closed], name: 'door_window' })
}

/** Fits both heads with a plain seeded Adam loop (model.fit shuffles with an unseeded generator). */
async function fitHeads (tf: Tf, matrix: Float32Array, width: number, classes: Int32Array, labels: readonly number[], o: DoorTrainingOptions): Promise<{ artifacts: tfjs.io.ModelArtifacts }> {
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

/**
 * A loaded door model. `predict` standardises the windows, runs both heads as
 * one matrix product (the two kernels side by side) in one tensor call, and
 * scores novelty against the stored summary in plain loops.
 */
export class DoorPredictor {
  readonly meta: DoorModelMeta
  private readonly tf: Tf
  /** inputSize × (labels + 1): the angle kernel, then the closed kernel as the last column. */
  private readonly kernel: tfjs.Tensor2D
  private readonly bias: Float32Array
  private readonly novelty: NoveltyScorer
  private readonly closedIndex: number
  private readonly inverseStd: Float32Array
  private readonly mean: Float32Array
  private disposed = false

  private constructor (tf: Tf, meta: DoorModelMeta, kernel: tfjs.Tensor2D, bias: Float32Array) {
    this.tf = tf
    this.meta = meta
    this.kernel = kernel
    this.bias = bias
    this.novelty = new NoveltyScorer(meta.novelty)
    this.closedIndex = meta.labels.indexOf(CLOSED_ANGLE)
    this.mean = Float32Array.from(meta.standardisation.mean)
    this.inverseStd = Float32Array.from(meta.standardisation.std, (s) => 1 / s)
  }

  /**
   * Rebuilds a predictor from a trained model's artifacts and meta (e.g. read
   * back from storage; the meta may have gone through JSON).
   * @throws Error when the meta is not a door model's or does not fit the weights
   */
  static async load (tf: Tf, artifacts: tfjs.io.ModelArtifacts, meta: DoorModelMeta): Promise<DoorPredictor> {
    if (meta.format !== DOOR_MODEL_FORMAT) throw new Error(`not a door window model (format ${JSON.stringify(meta.format)}, expected ${DOOR_MODEL_FORMAT})`)
    if (meta.inputSize !== 2 * DOOR_FRAME_WIDTH || meta.standardisation.mean.length !== meta.inputSize || meta.novelty.width !== meta.inputSize) {
      throw new Error(`door model meta does not fit: input ${meta.inputSize}, standardisation ${meta.standardisation.mean.length}, summary ${meta.novelty.width}`)
    }
    if (!meta.labels.includes(CLOSED_ANGLE)) throw new Error('door model meta has no closed (0°) class')
    checkHysteresis(meta.hysteresis)
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    try {
      const [angleKernel, angleBias] = model.getLayer(ANGLE_HEAD).getWeights()
      const [closedKernel, closedBias] = model.getLayer(CLOSED_HEAD).getWeights()
      if (angleKernel.shape[0] !== meta.inputSize || angleKernel.shape[1] !== meta.labels.length) {
        throw new Error(`door model weights are ${angleKernel.shape.join(' × ')}, meta says ${meta.inputSize} × ${meta.labels.length}`)
      }
      const kernel = tf.concat([angleKernel, closedKernel], 1) as tfjs.Tensor2D
      const bias = new Float32Array(meta.labels.length + 1)
      bias.set(angleBias.dataSync() as Float32Array, 0)
      bias[meta.labels.length] = (closedBias.dataSync() as Float32Array)[0]
      return new DoorPredictor(tf, meta, kernel, bias)
    } finally {
      model.dispose()
    }
  }

  /** k of the windows this model reads. */
  get window (): number {
    return this.meta.window
  }

  /**
   * Answers many windows (of any devices) at once: one matrix product for both
   * heads, then the novelty distance of each window.
   * @param windows window features as {@link FrameWindow.features} gives them (meta.inputSize values each)
   * @throws Error when a window has the wrong length or the predictor is disposed
   */
  predict (windows: ReadonlyArray<ArrayLike<number>>): DoorWindowPrediction[] {
    if (this.disposed) throw new Error('door predictor is disposed')
    const count = windows.length
    if (count === 0) return []
    const width = this.meta.inputSize
    const x = new Float32Array(count * width)
    for (let r = 0; r < count; r++) {
      const window = windows[r]
      if (window.length !== width) throw new Error(`window ${r}: expected ${width} window features, got ${window.length}`)
      const base = r * width
      for (let c = 0; c < width; c++) x[base + c] = (window[c] - this.mean[c]) * this.inverseStd[c]
    }
    const tf = this.tf
    const outputs = this.meta.labels.length + 1
    const logits = tf.tidy(() => tf.matMul(tf.tensor2d(x, [count, width]), this.kernel).dataSync() as Float32Array)
    const novelty = this.novelty.scores(x, count)
    const labels = this.meta.labels
    const classCount = labels.length
    const answers: DoorWindowPrediction[] = new Array(count)
    for (let r = 0; r < count; r++) {
      const base = r * outputs
      let max = Number.NEGATIVE_INFINITY
      for (let c = 0; c < classCount; c++) max = Math.max(max, logits[base + c] + this.bias[c])
      const probabilities = new Array<number>(classCount)
      let total = 0
      for (let c = 0; c < classCount; c++) {
        const e = Math.exp(logits[base + c] + this.bias[c] - max)
        probabilities[c] = e
        total += e
      }
      let bestOpen = -1
      for (let c = 0; c < classCount; c++) {
        probabilities[c] /= total
        if (c !== this.closedIndex && (bestOpen < 0 || probabilities[c] > probabilities[bestOpen])) bestOpen = c
      }
      const closedProbability = 1 / (1 + Math.exp(-(logits[base + classCount] + this.bias[classCount])))
      const state = closedProbability >= 0.5 ? 'closed' : 'open'
      const score = novelty[r]
      answers[r] = {
        angle: state === 'closed' ? CLOSED_ANGLE : labels[bestOpen],
        angleProbabilities: probabilities,
        closedProbability,
        state,
        confidence: state === 'closed' ? closedProbability : 1 - closedProbability,
        novelty: score,
        novel: score > 1
      }
    }
    return answers
  }

  /** Frees the weights. */
  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.kernel.dispose()
  }
}

/** What a pipeline needs of a model's meta. */
export type PipelineSettings = Pick<DoorModelMeta, 'window' | 'featureSet' | 'hysteresis'>

/**
 * The per-device engine a server keeps: the device's frame window and its
 * hysteresis. `push` turns a frame into window features once the window is
 * full; the caller predicts those (batched with other devices' windows) and
 * hands the answer back with `observe`, in the order the frames arrived. A model with another k or feature set needs a
 * fresh pipeline.
 */
export class DoorPipeline {
  readonly settings: Readonly<PipelineSettings>
  readonly hysteresis: DoorHysteresis
  private readonly window: FrameWindow
  private readonly row = new Float64Array(DOOR_FRAME_WIDTH)
  private lastFrameAt: number | null = null

  constructor (settings: PipelineSettings, startedAt = 0) {
    this.settings = Object.freeze({ window: settings.window, featureSet: settings.featureSet, hysteresis: checkHysteresis(settings.hysteresis) })
    this.window = new FrameWindow(settings.window, DOOR_FRAME_WIDTH)
    this.hysteresis = new DoorHysteresis(settings.hysteresis, startedAt)
  }

  /**
   * Adds one decoded frame (106 values). O(width).
   * @returns the window's features (a fresh array, 2 × 103 values) once the window holds k frames, else undefined
   * @throws Error when the frame does not hold 106 values
   */
  push (frame: ArrayLike<number>, at: number): Float32Array | undefined {
    doorFrameFeaturesInto(frame, this.settings.featureSet, this.row)
    this.window.push(this.row)
    this.lastFrameAt = at
    return this.window.ready ? this.window.features() : undefined
  }

  /** Feeds one window's prediction to the hysteresis. @returns whether the reported door changed */
  observe (prediction: WindowObservation, at: number): boolean {
    return this.hysteresis.push(prediction, at)
  }

  /** The reported door now. */
  get door (): HysteresisDoor {
    return this.hysteresis.door
  }

  /** Frames in the window (k once ready). */
  get framesInWindow (): number {
    return this.window.count
  }

  /**
   * After `staleAfter` without frames (caller's time unit): forgets the
   * window (old frames must not mix with new) and reports unknown.
   * @returns whether the reported state changed
   */
  expire (now: number, staleAfter: number): boolean {
    if (this.lastFrameAt !== null && now - this.lastFrameAt >= staleAfter) this.window.reset()
    return this.hysteresis.expire(now, staleAfter)
  }
}
