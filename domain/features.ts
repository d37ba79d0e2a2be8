/**
 * Feature engineering: how a frame's 106 values (53 magnitudes, then 53
 * phases, CH6..CH58) become the inputs of a model.
 *
 * - `raw`: the 106 values as they are (the original model's input).
 * - `magnitudes`: the 52 magnitudes without CH32.
 * - `magnitudes+phase-diff`: those 52 magnitudes, then the 51 phase
 *   differences between neighbouring subcarriers (CH7−CH6, …, CH33−CH31, …,
 *   CH58−CH57), wrapped to [-π, π]. A raw phase carries a random offset per
 *   packet (the receiver's oscillator); the difference of two subcarriers of
 *   the same packet cancels it.
 *
 * CH32 is the DC null: 0 in every recorded frame (the decoders set it to 0
 * too), so it carries no information. The engineered sets drop it, and the
 * phase difference across it is taken between its neighbours CH31 and CH33 —
 * a difference against its fake phase of 0 would bring the per-packet offset
 * back. `raw` keeps it, to stay the original's exact input; standardisation
 * maps its constant columns to 0 (see standardise.ts).
 */
import type { FeatureSet, ModelKind } from '../schemas/model.js'
import { DC_INDEX, FEATURES, SUBCARRIERS } from './frames.js'

/** Every feature set, in the order the comparison reports them. */
export const FEATURE_SETS: readonly FeatureSet[] = ['raw', 'magnitudes', 'magnitudes+phase-diff']

/** Indices (within the 53) of the subcarriers that carry signal: all but CH32. */
const SIGNAL_SUBCARRIERS: readonly number[] = Array.from({ length: SUBCARRIERS }, (_, k) => k).filter((k) => k !== DC_INDEX)

const TWO_PI = 2 * Math.PI

/** An angle in radians brought back to [-π, π]. */
export function wrapPhase (radians: number): number {
  return radians - TWO_PI * Math.round(radians / TWO_PI)
}

/** Number of model inputs a feature set makes of one CSI frame. */
export function featureCount (set: FeatureSet): number {
  switch (set) {
    case 'raw': return FEATURES
    case 'magnitudes': return SIGNAL_SUBCARRIERS.length
    case 'magnitudes+phase-diff': return 2 * SIGNAL_SUBCARRIERS.length - 1
  }
}

/** Model input width for a model kind: an RSSI model reads its one value as it is. */
export function inputWidth (kind: ModelKind, set: FeatureSet): number {
  return kind === 'rssi' ? 1 : featureCount(set)
}

/**
 * Writes the features of one CSI frame (106 values) into `out` from `offset`.
 * @throws Error when the frame does not hold 106 values
 */
export function extractFeaturesInto (frame: ArrayLike<number>, set: FeatureSet, out: Float32Array, offset = 0): void {
  if (frame.length !== FEATURES) throw new Error(`a CSI frame must hold ${FEATURES} values (53 magnitudes, 53 phases), got ${frame.length}`)
  if (set === 'raw') {
    for (let i = 0; i < FEATURES; i++) out[offset + i] = frame[i]
    return
  }
  const count = SIGNAL_SUBCARRIERS.length
  for (let j = 0; j < count; j++) out[offset + j] = frame[SIGNAL_SUBCARRIERS[j]]
  if (set === 'magnitudes') return
  for (let j = 1; j < count; j++) {
    const phase = frame[SUBCARRIERS + SIGNAL_SUBCARRIERS[j]]
    const previous = frame[SUBCARRIERS + SIGNAL_SUBCARRIERS[j - 1]]
    out[offset + count + j - 1] = wrapPhase(phase - previous)
  }
}

/** The features of one CSI frame. */
export function extractFeatures (frame: ArrayLike<number>, set: FeatureSet): Float32Array {
  const out = new Float32Array(featureCount(set))
  extractFeaturesInto(frame, set, out)
  return out
}

/**
 * The model inputs of many frames as one row-major matrix (rows × width), the
 * layout a 2-D tensor is made from without copying. `rows` picks and orders
 * the frames (default: all).
 * @throws Error naming the first frame of the wrong length
 */
export function inputMatrix (
  kind: ModelKind,
  set: FeatureSet,
  frames: ReadonlyArray<ArrayLike<number>>,
  rows?: ArrayLike<number>
): { matrix: Float32Array, width: number, rows: number } {
  const width = inputWidth(kind, set)
  const count = rows ? rows.length : frames.length
  const matrix = new Float32Array(count * width)
  for (let r = 0; r < count; r++) {
    const index = rows ? rows[r] : r
    const frame = frames[index]
    if (kind === 'rssi') {
      if (frame.length !== 1) throw new Error(`frame ${index}: an RSSI reading must be 1 value, got ${frame.length}`)
      matrix[r] = frame[0]
      continue
    }
    try {
      extractFeaturesInto(frame, set, matrix, r * width)
    } catch (err) {
      throw new Error(`frame ${index}: ${(err as Error).message}`)
    }
  }
  return { matrix, width, rows: count }
}
