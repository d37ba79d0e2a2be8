/**
 * The network architectures the trainer can build: one definition for every
 * backend, saved and loaded as tfjs Layers models. Each ends in a softmax over
 * the label angles, so a saved model answers probabilities on its own.
 */
import type * as tfjs from '@tensorflow/tfjs'
import type { Architecture } from '../../schemas/model.js'
import type { Tf } from '../model-types.js'

/** Every architecture, in the order the comparison reports them. */
export const ARCHITECTURES: readonly Architecture[] = ['softmax', 'original', 'mlp']

/** Hidden layers of each architecture (units, relu). */
const HIDDEN_UNITS: Record<Architecture, number[]> = {
  softmax: [],
  // the 2021 Keras model: Dense(24, relu) -> Dense(7, softmax)
  original: [24],
  mlp: [128, 64]
}

/** Dropout after each hidden layer of the wide MLP (the others have none). */
const MLP_DROPOUT = 0.2

/** What to build. */
export interface NetworkSpec {
  architecture: Architecture
  inputSize: number
  classes: number
  /** Seeds the weight initialisers, so a run can be repeated. */
  seed: number
}

/**
 * Builds an untrained network (Keras' default initialisers, as the original
 * had, but seeded). L2 is not a layer regulariser here: the
 * trainer adds it to its loss over {@link kernelsOf}, which keeps the saved
 * topology free of training-only settings.
 */
export function buildNetwork (tf: Tf, spec: NetworkSpec): tfjs.Sequential {
  const model = tf.sequential()
  let seed = spec.seed
  let inputShape: number[] | undefined = [spec.inputSize]
  for (const units of HIDDEN_UNITS[spec.architecture]) {
    model.add(tf.layers.dense({ units, activation: 'relu', inputShape, kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }))
    inputShape = undefined
    // no seed on purpose: a seeded tfjs dropout layer draws the same mask at every step
    if (spec.architecture === 'mlp') model.add(tf.layers.dropout({ rate: MLP_DROPOUT }))
  }
  model.add(tf.layers.dense({ units: spec.classes, inputShape, kernelInitializer: tf.initializers.glorotUniform({ seed }) }))
  // a separate softmax layer: training stops before it and takes the loss on the logits
  model.add(tf.layers.activation({ activation: 'softmax' }))
  return model
}

/**
 * The logits of a batch: every layer but the final softmax, in training mode
 * (dropout on). Softmax cross-entropy on logits is one fused, stable op.
 */
export function logitsOf (model: tfjs.Sequential, input: tfjs.Tensor): tfjs.Tensor {
  let output = input
  for (const layer of model.layers.slice(0, -1)) output = layer.apply(output, { training: true }) as tfjs.Tensor
  return output
}

/** The kernels (not the biases) of a network's dense layers: what L2 weighs. */
export function kernelsOf (model: tfjs.LayersModel): tfjs.Variable[] {
  return model.trainableWeights.filter((weight) => /kernel$/.test(weight.originalName)).map((weight) => weight.read() as tfjs.Variable)
}

/** All trainable variables of a network, for the optimiser. */
export function trainableVariablesOf (model: tfjs.LayersModel): tfjs.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tfjs.Variable)
}
