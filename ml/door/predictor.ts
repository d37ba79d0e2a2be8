/**
 * A loaded door model (train.ts trains it). {@link DoorPredictor.predict}
 * answers many windows (of any devices) in one tensor call: both heads as one
 * matrix product, then each window's novelty against the stored summary.
 * No I/O, no HTTP; the tfjs module is passed in (a worker brings its own).
 */
import type * as tfjs from '@tensorflow/tfjs'
import { DOOR_FRAME_WIDTH } from '../../domain/door-window.js'
import { checkHysteresis, type WindowObservation } from '../../domain/door-hysteresis.js'
import { CLOSED_ANGLE } from '../../domain/labels.js'
import { NoveltyScorer, type KnnScan } from '../novelty.js'
import type { Tf } from '../model-types.js'
import { ANGLE_HEAD, CLOSED_HEAD, DOOR_MODEL_FORMAT, type DoorModelMeta } from './model-types.js'

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

  private constructor (tf: Tf, meta: DoorModelMeta, kernel: tfjs.Tensor2D, bias: Float32Array, scan: KnnScan | undefined) {
    this.tf = tf
    this.meta = meta
    this.kernel = kernel
    this.bias = bias
    this.novelty = new NoveltyScorer(meta.novelty, scan)
    this.closedIndex = meta.labels.indexOf(CLOSED_ANGLE)
    this.mean = Float32Array.from(meta.standardisation.mean)
    this.inverseStd = Float32Array.from(meta.standardisation.std, (s) => 1 / s)
  }

  /**
   * Rebuilds a predictor from a trained model's artifacts and meta (e.g. read
   * back from storage; the meta may have gone through JSON).
   * @param options.scan the novelty's kNN scan (ml/novelty.ts knnDistances unless a benchmark passes an earlier one)
   * @throws Error when the meta is not a door model's or does not fit the weights
   */
  static async load (tf: Tf, artifacts: tfjs.io.ModelArtifacts, meta: DoorModelMeta, options: { scan?: KnnScan } = {}): Promise<DoorPredictor> {
    if (meta.format !== DOOR_MODEL_FORMAT) throw new Error(`not a door window model (format ${JSON.stringify(meta.format)}, expected ${DOOR_MODEL_FORMAT})`)
    if (meta.inputSize !== 2 * DOOR_FRAME_WIDTH || meta.standardisation.mean.length !== meta.inputSize || meta.novelty.width !== meta.inputSize) {
      throw new Error(`door model meta does not fit: input ${meta.inputSize}, standardisation ${meta.standardisation.mean.length}, ` +
        `summary ${meta.novelty.width}`)
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
      return new DoorPredictor(tf, meta, kernel, bias, options.scan)
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
   * @param windows window features as `FrameWindow.features` (domain/door-window.ts) gives them (meta.inputSize values each)
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
