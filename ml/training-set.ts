/**
 * The one shape of labelled rows a training takes, whoever assembles it (the
 * sample store, the legacy train body, a session CSV, the eval CLI), its one
 * validator and the one rule for a row's width. The global trainer checks it
 * and a door's calibration travels to the worker in it too, so it sits at
 * ml/'s root beside model-types.ts, below both models and the training runs.
 */
import { BadRequestError, TooFewSamplesError } from '../core/errors.js'
import { FEATURES } from '../domain/frames.js'
import { angleProblem, CLOSED_ANGLE, MAX_ANGLE } from '../domain/labels.js'
import type { ModelKind } from '../schemas/model.js'

/** Values per row of each model kind: 106 CSI features, or 1 RSSI value. */
export const ROW_WIDTH: Readonly<Record<ModelKind, number>> = Object.freeze({ csi: FEATURES, rssi: 1 })

/** Fewest rows each label needs: enough for a train part and a tail. */
export const MIN_ROWS_PER_LABEL = 10
/** Fewest labels a classifier can be trained on. */
export const MIN_LABELS = 2

/** Labelled rows in insertion order (the blocked split depends on that order). */
export interface TrainingSet {
  kind: ModelKind
  /** One row per sample, {@link ROW_WIDTH} values each. */
  features: ReadonlyArray<Float32Array | number[]>
  /** The door angle of each row, in degrees. */
  angles: readonly number[]
}

/**
 * The stored samples of a kind, as a run reads them itself from the database
 * file (a dataset of 300,000 rows took the event loop ~3 s to read and pack):
 * checked before the run starts on its rows per label only.
 */
export interface StoredSamples {
  kind: ModelKind
  /** The SQLite file holding `training_samples`. */
  database: string
  /** Rows per label (angle). */
  labelCounts: ReadonlyMap<number, number>
}

/** Whether a run's rows are the stored samples, read by the run itself. */
export function isStoredSamples (set: TrainingSet | StoredSamples): set is StoredSamples {
  return 'database' in set
}

/** Rows a set holds. */
export function rowsOf (set: TrainingSet | StoredSamples): number {
  return isStoredSamples(set) ? [...set.labelCounts.values()].reduce((a, b) => a + b, 0) : set.features.length
}

/** A {@link TrainingSet} packed into one flat buffer, which crosses a thread or process boundary cheaply. */
export interface PackedTrainingSet {
  kind: ModelKind
  /** rows × ROW_WIDTH[kind] values, row after row. */
  features: Float32Array
  angles: number[]
}

/** Packs a set's rows into one buffer (the set is left as it was). */
export function packTrainingSet (set: TrainingSet): PackedTrainingSet {
  const width = ROW_WIDTH[set.kind]
  const features = new Float32Array(set.features.length * width)
  set.features.forEach((row, i) => features.set(row, i * width))
  return { kind: set.kind, features, angles: [...set.angles] }
}

/** The rows of a packed set, as views into its buffer. */
export function unpackTrainingSet (packed: PackedTrainingSet): TrainingSet {
  const width = ROW_WIDTH[packed.kind]
  const features: Float32Array[] = []
  for (let offset = 0; offset < packed.features.length; offset += width) features.push(packed.features.subarray(offset, offset + width))
  return { kind: packed.kind, features, angles: packed.angles }
}

/**
 * Rejects a set the trainer cannot learn from, with a message an admin can
 * act on. The server calls it before a run starts, the trainer again on
 * what it receives.
 * @returns the label set, ascending
 * @throws BadRequestError (a malformed row) or TooFewSamplesError (too few labels, or rows of a label)
 */
export function checkTrainingSet (set: TrainingSet): number[] {
  const width = ROW_WIDTH[set.kind]
  if (set.features.length !== set.angles.length) {
    throw new BadRequestError(`training set has ${set.features.length} rows but ${set.angles.length} angles`)
  }
  const counts = new Map<number, number>()
  for (let row = 0; row < set.features.length; row++) {
    const problem = angleProblem(set.angles[row])
    if (problem) throw new BadRequestError(`row ${row}: ${problem}`)
    const values = set.features[row]
    if (values.length !== width) throw new BadRequestError(`row ${row} holds ${values.length} values, a ${set.kind} model reads ${width}`)
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new BadRequestError(`row ${row}: value ${i} is not a finite number (${values[i]})`)
    }
    counts.set(set.angles[row], (counts.get(set.angles[row]) ?? 0) + 1)
  }
  return checkLabelCounts(set.kind, counts)
}

/**
 * {@link checkTrainingSet} of stored samples, on their counts per label (the
 * rows themselves were checked when they were stored).
 * @throws TooFewSamplesError (too few labels, or rows of a label)
 */
export function checkStoredSamples (set: StoredSamples): number[] {
  return checkLabelCounts(set.kind, set.labelCounts)
}

function checkLabelCounts (kind: ModelKind, counts: ReadonlyMap<number, number>): number[] {
  const labels = [...counts.keys()].sort((a, b) => a - b)
  if (labels.length < MIN_LABELS) {
    const have = labels.length === 0 ? 'no samples' : `only ${labels.map((angle) => `${angle}°`).join(', ')}`
    throw new TooFewSamplesError(`training needs samples of at least ${MIN_LABELS} door angles; the ${kind} dataset has ${have}: ${missingAngles(labels)}`)
  }
  const scarce = labels.filter((angle) => (counts.get(angle) as number) < MIN_ROWS_PER_LABEL)
  if (scarce.length) {
    const more = scarce.map((angle) => `${MIN_ROWS_PER_LABEL - (counts.get(angle) as number)} more of ${angle}°`)
    const tooFew = scarce.map((angle) => `${angle}° (${counts.get(angle)})`).join(', ')
    throw new TooFewSamplesError(`training needs at least ${MIN_ROWS_PER_LABEL} samples per door angle; too few for ${tooFew}: ` +
      `add at least ${more.join(' and ')}, or remove ${scarce.length === 1 ? 'that angle\'s samples' : 'those angles\' samples'}`)
  }
  return labels
}

/** Which angle to add samples of when there are fewer than {@link MIN_LABELS}: the door closed, or open, whichever is absent. */
function missingAngles (labels: readonly number[]): string {
  if (labels.length === 0) return `add samples of the door closed (${CLOSED_ANGLE}°) and open (e.g. ${MAX_ANGLE}°)`
  if (labels.includes(CLOSED_ANGLE)) return `add samples of the door open (any angle 1..${MAX_ANGLE}°, e.g. ${MAX_ANGLE}°)`
  return `add samples of another angle, e.g. the door closed (${CLOSED_ANGLE}°)`
}
