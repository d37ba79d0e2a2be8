/**
 * CONTRACT (to be implemented): a loaded model ready to classify frames.
 */
import type * as tfjs from '@tensorflow/tfjs'
import type { Prediction } from '../../schemas/model.js'
import type { ModelMeta, Tf } from './trainer.js'

export declare class Predictor {
  /** Builds the network from artifacts (tf.io.fromMemory) and keeps the meta. */
  static load (tf: Tf, artifacts: tfjs.io.ModelArtifacts, meta: ModelMeta): Promise<Predictor>
  readonly meta: ModelMeta
  /**
   * Classifies frames (106 CSI features each, or 1 RSSI value for an RSSI
   * model) in one tensor call; synchronous; leaks no tensor.
   */
  predict (frames: ReadonlyArray<Float32Array | number[]>): Prediction[]
  dispose (): void
}
