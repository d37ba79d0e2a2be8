/**
 * A loaded model ready to classify frames: the network plus the feature set
 * and standardisation it was trained with, applied in the same order.
 */
import type * as tfjs from '@tensorflow/tfjs'
import { inputMatrix } from '../../domain/features.js'
import { doorStateOf } from '../../domain/labels.js'
import { applyStandardisation } from '../../domain/standardise.js'
import type { Prediction } from '../../schemas/model.js'
import type { ModelMeta, Tf } from '../model-types.js'
import { WindowNoveltyModel } from '../novelty.js'

/** One row of a matrix as a plain array (faster than Array.from on a subarray). */
function rowOf (values: Float32Array, base: number, count: number): number[] {
  const row = new Array<number>(count)
  for (let i = 0; i < count; i++) row[i] = values[base + i]
  return row
}

/**
 * One prediction per row of a row-major probability matrix (rows × labels):
 * the most likely angle, open/closed from it, its probability as confidence.
 */
export function predictionsFromProbabilities (probabilities: Float32Array, labels: readonly number[]): Prediction[] {
  const classCount = labels.length
  const count = probabilities.length / classCount
  const predictions: Prediction[] = new Array(count)
  for (let r = 0; r < count; r++) {
    const base = r * classCount
    let best = 0
    for (let c = 1; c < classCount; c++) if (probabilities[base + c] > probabilities[base + best]) best = c
    const angle = labels[best]
    predictions[r] = {
      angle,
      state: doorStateOf(angle),
      confidence: probabilities[base + best],
      probabilities: rowOf(probabilities, base, classCount)
    }
  }
  return predictions
}

/** A hidden dense layer, run as plain tensor ops. */
interface HiddenStep {
  kernel: tfjs.Tensor
  bias: tfjs.Tensor | undefined
  relu: boolean
}

/**
 * The network as plain ops: hidden dense layers, then the output layer's
 * kernel; its bias and the softmax are applied in JS on the logits. The cpu
 * backend's broadcasting add and its softmax cost more than the matrix
 * product itself, and a layers-model predict() adds its own overhead.
 */
interface DensePlan {
  hidden: HiddenStep[]
  outputKernel: tfjs.Tensor
  outputBias: Float32Array
  /** The same weights as plain arrays (unit-major), for {@link forwardInJs}. */
  js: JsLayer[]
}

/** A dense layer's weights read out once: `weights` holds units × inputs values, row u the weights of unit u (its kernel's column). */
interface JsLayer {
  weights: Float32Array
  bias: Float32Array | undefined
  inputs: number
  units: number
  relu: boolean
}

/**
 * How a dense network runs: `loops`, {@link forwardInJs} (the pure-JS `cpu`
 * backend's default: its tensor ops are JS loops too, and a call's set-up —
 * tidy, kernel dispatch, read-back — cost more than the multiply-adds of a
 * frame: a one-frame predict 7 µs through tensor ops, 4 µs here, with the
 * input matrix and the answer), or `tensors` (a native backend's: its
 * kernels outrun JS). One way per predictor, so a frame gets the same
 * answer alone as in a batch.
 */
export type Forward = 'loops' | 'tensors'

/**
 * Reads a stack of dense layers (dropout skipped: it is off at inference)
 * whose last one ends in a softmax, as buildNetwork makes them; undefined for
 * any other network, which then runs through predict().
 */
function densePlan (model: tfjs.LayersModel): DensePlan | undefined {
  const dense: Array<{ kernel: tfjs.Tensor, bias: tfjs.Tensor | undefined, activation: string | undefined }> = []
  let trailingSoftmax = false
  for (const layer of model.layers) {
    const kind = layer.getClassName()
    const activation = (layer.getConfig() as { activation?: string }).activation
    if (trailingSoftmax) return undefined
    if (kind === 'Dropout') continue
    if (kind === 'Activation' && activation === 'softmax') {
      trailingSoftmax = true
      continue
    }
    if (kind !== 'Dense') return undefined
    // the model's own weight tensors, not copies: disposing the model frees them
    const [kernel, bias] = layer.getWeights()
    dense.push({ kernel, bias, activation })
  }
  const output = dense.pop()
  if (!output || output.activation !== (trailingSoftmax ? 'linear' : 'softmax')) return undefined
  if (dense.some((layer) => layer.activation !== 'relu' && layer.activation !== 'linear')) return undefined
  const classes = output.kernel.shape[1] as number
  const hidden = dense.map((layer) => ({ kernel: layer.kernel, bias: layer.bias, relu: layer.activation === 'relu' }))
  const jsLayer = (kernel: tfjs.Tensor, bias: tfjs.Tensor | undefined, relu: boolean): JsLayer => {
    const [inputs, units] = kernel.shape as [number, number]
    const values = kernel.dataSync() as Float32Array
    // unit-major: each unit's sum runs over one contiguous row
    const weights = new Float32Array(inputs * units)
    for (let i = 0; i < inputs; i++) for (let u = 0; u < units; u++) weights[u * inputs + i] = values[i * units + u]
    return { weights, bias: bias ? Float32Array.from(bias.dataSync() as Float32Array) : undefined, inputs, units, relu }
  }
  return {
    hidden,
    outputKernel: output.kernel,
    outputBias: output.bias ? Float32Array.from(output.bias.dataSync() as Float32Array) : new Float32Array(classes),
    // the output layer without its bias: softmaxRows adds it
    js: [...hidden.map((step) => jsLayer(step.kernel, step.bias, step.relu)), jsLayer(output.kernel, undefined, false)]
  }
}

/**
 * The logits (output bias left to softmaxRows) of `rows` standardised rows
 * of `width` values, in plain loops over the plan's weights: what the tensor
 * ops compute, to float32 rounding (each sum runs in double precision).
 */
function forwardInJs (layers: readonly JsLayer[], matrix: Float32Array, rows: number, width: number): Float32Array {
  const classes = layers[layers.length - 1].units
  const logits = new Float32Array(rows * classes)
  // two buffers the layers take turns writing (the widest layer's size), reused across rows
  const widest = Math.max(...layers.map((layer) => layer.units))
  let from = new Float64Array(widest)
  let to = new Float64Array(widest)
  for (let r = 0; r < rows; r++) {
    let input: Float32Array | Float64Array = matrix.subarray(r * width, (r + 1) * width)
    for (const { weights, bias, inputs, units, relu } of layers) {
      for (let u = 0; u < units; u++) {
        const base = u * inputs
        let sum = bias ? bias[u] : 0
        for (let i = 0; i < inputs; i++) sum += input[i] * weights[base + i]
        to[u] = relu && sum < 0 ? 0 : sum
      }
      input = to
      ;[from, to] = [to, from]
    }
    for (let c = 0; c < classes; c++) logits[r * classes + c] = input[c]
  }
  return logits
}

/** Softmax of (logits + bias) per row, in place. */
function softmaxRows (logits: Float32Array, bias: Float32Array): Float32Array {
  const classes = bias.length
  for (let base = 0; base < logits.length; base += classes) {
    let max = Number.NEGATIVE_INFINITY
    for (let c = 0; c < classes; c++) {
      logits[base + c] += bias[c]
      if (logits[base + c] > max) max = logits[base + c]
    }
    let sum = 0
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[base + c] - max)
      logits[base + c] = e
      sum += e
    }
    for (let c = 0; c < classes; c++) logits[base + c] /= sum
  }
  return logits
}

/** A trained network with its meta, classifying batches of frames. */
export class Predictor {
  private disposed = false
  private readonly plan: DensePlan | undefined
  /** Whether the dense plan runs in {@link forwardInJs}. */
  private readonly loops: boolean
  /** How unlike this model's training windows a device's frames are (absent for a model trained before it was kept, or an RSSI one). */
  readonly novelty: WindowNoveltyModel | undefined

  private constructor (private readonly tf: Tf, private readonly model: tfjs.LayersModel, readonly meta: ModelMeta, forward: Forward) {
    this.plan = densePlan(model)
    this.loops = this.plan !== undefined && forward === 'loops'
    this.novelty = meta.novelty ? new WindowNoveltyModel(meta.novelty) : undefined
  }

  /**
   * Builds the network from artifacts (tf.io.fromMemory) and keeps the meta.
   * @param forward how a dense network runs ({@link Forward}); default: loops on the `cpu` backend, tensors on any other
   * @throws Error when the network does not fit the meta (input width, label count)
   */
  static async load (tf: Tf, artifacts: tfjs.io.ModelArtifacts, meta: ModelMeta, forward?: Forward): Promise<Predictor> {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    const inputWidth = model.inputs[0]?.shape[1]
    const outputWidth = model.outputs[0]?.shape[1]
    if (inputWidth !== meta.inputSize || outputWidth !== meta.labels.length || meta.standardisation.mean.length !== meta.inputSize) {
      model.dispose()
      throw new Error(`model does not fit its meta: network ${inputWidth} inputs → ${outputWidth} classes, ` +
        `meta ${meta.inputSize} inputs (${meta.standardisation.mean.length} standardised) → ${meta.labels.length} labels`)
    }
    try {
      return new Predictor(tf, model, meta, forward ?? (tf.getBackend() === 'cpu' ? 'loops' : 'tensors'))
    } catch (err) {
      model.dispose()
      throw err
    }
  }

  /**
   * Classifies frames (106 CSI features each, or 1 RSSI value for an RSSI
   * model) in one batched pass through the network; synchronous; leaks no tensor.
   * @throws Error naming the first frame of the wrong length
   */
  predict (frames: ReadonlyArray<Float32Array | number[]>): Prediction[] {
    return predictionsFromProbabilities(this.probabilities(frames), this.meta.labels)
  }

  /**
   * Class probabilities of frames as one row-major matrix (frames × labels,
   * in the order of `meta.labels`), for callers that need no Prediction objects.
   */
  probabilities (frames: ReadonlyArray<Float32Array | number[]>): Float32Array {
    if (this.disposed) throw new Error('predictor was disposed')
    if (frames.length === 0) return new Float32Array(0)
    const { matrix, width, rows } = inputMatrix(this.meta.kind, this.meta.featureSet, frames)
    applyStandardisation(matrix, this.meta.standardisation)
    const { tf, plan } = this
    if (plan && this.loops) return softmaxRows(forwardInJs(plan.js, matrix, rows, width), plan.outputBias)
    let values: Float32Array = new Float32Array(0)
    tf.tidy(() => {
      const input = tf.tensor2d(matrix, [rows, width])
      if (plan) {
        let hidden: tfjs.Tensor = input
        for (const step of plan.hidden) {
          hidden = tf.matMul(hidden, step.kernel)
          if (step.bias) hidden = tf.add(hidden, step.bias)
          if (step.relu) hidden = tf.relu(hidden)
        }
        // a copy: some backends hand out their own buffer, and the softmax below writes in place
        values = softmaxRows(Float32Array.from(tf.matMul(hidden, plan.outputKernel).dataSync() as Float32Array), plan.outputBias)
      } else {
        // batchSize = all rows: one execution, not tfjs' default chunks of 32
        values = Float32Array.from((this.model.predict(input, { batchSize: rows }) as tfjs.Tensor).dataSync() as Float32Array)
      }
    })
    return values
  }

  /** Frees the network's weights; predict() throws afterwards. */
  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.model.dispose()
  }
}
