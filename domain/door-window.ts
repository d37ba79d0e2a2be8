/**
 * Sliding windows of frames: the door holds still for seconds, so the door
 * state is read from the last k frames of one device rather than from one
 * frame. A window's features are the per-feature mean and std of its k frame
 * rows.
 *
 * - {@link FrameWindow}: the per-device ring buffer with running sums, O(width)
 *   per frame, as the server runs it.
 * - {@link doorFrameFeaturesInto}: what one 106-value frame contributes to a
 *   window (the frame feature sets compared in bench/door-model.bench.ts).
 * - {@link runWindows}: training windows drawn only inside contiguous runs of
 *   one label, computed by the same FrameWindow the server runs, so a
 *   training window and a live window of the same frames are identical.
 */
import { DC_INDEX, FEATURES, SUBCARRIERS } from './frames.js'
import { extractFeaturesInto, wrapPhase } from './features.js'

/**
 * Per-frame inputs of a window:
 * - `magnitudes+phase-diff`: domain/features.ts's set, 52 magnitudes (CH32
 *   dropped) then 51 adjacent-subcarrier phase differences (103 values);
 * - `log-magnitudes+phase-diff`: the same with ln(1 + magnitude);
 * - `centred-log-magnitudes+phase-diff`: ln(1 + magnitude) minus the frame's
 *   mean over its 52 subcarriers (removes the frame's overall gain, e.g. AGC
 *   steps and slow drift), then the phase differences.
 */
export type DoorFrameFeatures = 'magnitudes+phase-diff' | 'log-magnitudes+phase-diff' | 'centred-log-magnitudes+phase-diff'

/** Every frame feature set, in the order the benchmark reports them. */
export const DOOR_FRAME_FEATURES: readonly DoorFrameFeatures[] = ['magnitudes+phase-diff', 'log-magnitudes+phase-diff', 'centred-log-magnitudes+phase-diff']

/** Magnitudes that carry signal (all but CH32). */
const MAGNITUDES = SUBCARRIERS - 1
/** Values a frame contributes to a window: 52 magnitudes + 51 phase differences, whatever the set. */
export const DOOR_FRAME_WIDTH = 2 * MAGNITUDES - 1

/** Smallest and largest window length the engine accepts. */
export const MIN_WINDOW = 2
export const MAX_WINDOW = 256

/**
 * Writes one frame's window inputs (106 values in: 53 magnitudes, 53 phases)
 * into `out` from `offset` ({@link DOOR_FRAME_WIDTH} values).
 * @throws Error when the frame does not hold 106 values
 */
export function doorFrameFeaturesInto (frame: ArrayLike<number>, set: DoorFrameFeatures, out: Float32Array | Float64Array, offset = 0): void {
  if (frame.length !== FEATURES) throw new Error(`a CSI frame must hold ${FEATURES} values (53 magnitudes, 53 phases), got ${frame.length}`)
  if (set === 'magnitudes+phase-diff' && out instanceof Float32Array) {
    extractFeaturesInto(frame, 'magnitudes+phase-diff', out, offset)
    return
  }
  let j = 0
  let sum = 0
  for (let k = 0; k < SUBCARRIERS; k++) {
    if (k === DC_INDEX) continue
    const value = set === 'magnitudes+phase-diff' ? frame[k] : Math.log1p(Math.max(0, frame[k]))
    out[offset + j++] = value
    sum += value
  }
  if (set === 'centred-log-magnitudes+phase-diff') {
    const mean = sum / MAGNITUDES
    for (let m = 0; m < MAGNITUDES; m++) out[offset + m] -= mean
  }
  let previous = -1
  for (let k = 0; k < SUBCARRIERS; k++) {
    if (k === DC_INDEX) continue
    // across the DC null the difference is taken between its neighbours CH31 and CH33 (see features.ts)
    if (previous >= 0) out[offset + j++] = wrapPhase(frame[SUBCARRIERS + k] - frame[SUBCARRIERS + previous])
    previous = k
  }
}

/** One frame's window inputs as a fresh array. */
export function doorFrameFeatures (frame: ArrayLike<number>, set: DoorFrameFeatures): Float32Array {
  const out = new Float32Array(DOOR_FRAME_WIDTH)
  doorFrameFeaturesInto(frame, set, out)
  return out
}

/**
 * The last `k` rows of `width` values of one stream, with per-column running
 * sums, so the window's mean and std cost O(width) per pushed row.
 *
 * Numerics: the sums are float64 and taken around a per-column shift `c`
 * (Σ(x − c), Σ(x − c)²), so the variance Σ(x − c)²/k − (Σ(x − c)/k)² does not
 * lose its digits to cancellation when a column's mean is large against its
 * spread (magnitudes ~30 with a std of ~0.1). Each push adds one row and
 * removes one, and each of those float64 operations rounds; the error is tiny
 * but a running sum never forgets it, so it would grow without bound over
 * weeks of frames. Once per lap (every k pushes, O(width) amortised) the sums
 * are therefore recomputed exactly from the ring, with the shift moved to the
 * current window mean: the error never spans more than one lap. A variance
 * that still comes out negative by a rounding step is clamped to 0.
 */
export class FrameWindow {
  readonly size: number
  readonly width: number
  /** Ring of `size` rows, each as pushed (float64 so the resum sees exactly what was added). */
  private readonly ring: Float64Array
  private readonly shift: Float64Array
  private readonly sum: Float64Array
  private readonly sumSquares: Float64Array
  private filled = 0
  private head = 0
  private pushes = 0

  /**
   * @param size k, the rows a window holds ({@link MIN_WINDOW}..{@link MAX_WINDOW})
   * @param width values per row
   */
  constructor (size: number, width: number) {
    if (!Number.isInteger(size) || size < MIN_WINDOW || size > MAX_WINDOW) {
      throw new RangeError(`window size must be an integer in ${MIN_WINDOW}..${MAX_WINDOW}, got ${size}`)
    }
    if (!Number.isInteger(width) || width < 1) throw new RangeError(`window width must be a positive integer, got ${width}`)
    this.size = size
    this.width = width
    this.ring = new Float64Array(size * width)
    this.shift = new Float64Array(width)
    this.sum = new Float64Array(width)
    this.sumSquares = new Float64Array(width)
  }

  /** Whether the window holds `size` rows (its features are defined only then). */
  get ready (): boolean {
    return this.filled === this.size
  }

  /** Rows held (at most `size`). */
  get count (): number {
    return this.filled
  }

  /** Rows pushed since the last reset. */
  get pushed (): number {
    return this.pushes
  }

  /**
   * Adds a row, dropping the oldest once the window is full. O(width), plus an
   * exact O(size × width) resum once every `size` pushes.
   * @throws RangeError when the row is not `width` long
   */
  push (row: ArrayLike<number>): void {
    const width = this.width
    if (row.length !== width) throw new RangeError(`a window row must hold ${width} values, got ${row.length}`)
    if (this.filled === 0) {
      // the first row of a fresh window is the shift: sums start at exactly 0
      for (let c = 0; c < width; c++) this.shift[c] = row[c]
    }
    const base = this.head * width
    const full = this.filled === this.size
    for (let c = 0; c < width; c++) {
      if (full) {
        const old = this.ring[base + c] - this.shift[c]
        this.sum[c] -= old
        this.sumSquares[c] -= old * old
      }
      const value = row[c]
      this.ring[base + c] = value
      const d = value - this.shift[c]
      this.sum[c] += d
      this.sumSquares[c] += d * d
    }
    if (!full) this.filled++
    this.head = (this.head + 1) % this.size
    this.pushes++
    if (this.head === 0 && this.filled === this.size) this.resum()
  }

  /**
   * The window's features: the mean of each column, then its (population)
   * std: 2 × width values. Only defined once {@link ready}.
   * @param out where to write them (a fresh Float32Array by default)
   * @throws Error before the window is full, or when `out` is too short
   */
  features (): Float32Array
  features<T extends Float32Array | Float64Array> (out: T, offset?: number): T
  features (out: Float32Array | Float64Array = new Float32Array(2 * this.width), offset = 0): Float32Array | Float64Array {
    if (!this.ready) throw new Error(`the window holds ${this.filled} of ${this.size} rows: no features before it is full`)
    const width = this.width
    if (out.length < offset + 2 * width) throw new RangeError(`features need ${2 * width} values from offset ${offset}, the array holds ${out.length}`)
    const n = this.size
    for (let c = 0; c < width; c++) {
      const m = this.sum[c] / n
      const variance = this.sumSquares[c] / n - m * m
      out[offset + c] = this.shift[c] + m
      out[offset + width + c] = variance > 0 ? Math.sqrt(variance) : 0
    }
    return out
  }

  /** Forgets every row (e.g. after silence: old frames must not mix with new ones). */
  reset (): void {
    this.filled = 0
    this.head = 0
    this.pushes = 0
    this.sum.fill(0)
    this.sumSquares.fill(0)
  }

  /** Exact sums from the ring, around the current mean as the new shift. */
  private resum (): void {
    const width = this.width
    const n = this.filled
    for (let c = 0; c < width; c++) {
      let total = 0
      for (let r = 0; r < n; r++) total += this.ring[r * width + c]
      const shift = total / n
      let sum = 0
      let squares = 0
      for (let r = 0; r < n; r++) {
        const d = this.ring[r * width + c] - shift
        sum += d
        squares += d * d
      }
      this.shift[c] = shift
      this.sum[c] = sum
      this.sumSquares[c] = squares
    }
  }
}

/** Training windows: a row-major matrix of window features and, per window, its label and last row. */
export interface RunWindows {
  /** count × width window features (mean then std of each input column). */
  matrix: Float32Array
  /** 2 × the row width. */
  width: number
  count: number
  /** The label of each window (every row in it has that label). */
  labels: number[]
  /** Index (into the rows given) of each window's newest row. */
  ends: number[]
}

/** How {@link runWindows} draws windows. */
export interface RunWindowOptions {
  /** Rows per window, k. */
  size: number
  /** Rows between the ends of two consecutive windows of a run (1 = every window; default 1). */
  stride?: number
  /** Only rows at these indices, in this order (e.g. one part of a split); default all. Non-consecutive indices end a run. */
  rows?: readonly number[]
}

/**
 * Windows of `size` consecutive rows, drawn only inside contiguous runs of one
 * label: a run ends where the label changes or where the listed row indices
 * skip (a gap in the recording, or the edge of a split part). A run shorter
 * than `size` gives no window. Computed with {@link FrameWindow}, exactly as
 * the server computes a live window.
 * @param inputs one row of window inputs per frame (e.g. {@link doorFrameFeatures}), all of one width
 * @param labels the label of each row
 * @throws RangeError on bad sizes or lengths
 */
export function runWindows (inputs: ReadonlyArray<ArrayLike<number>>, labels: ArrayLike<number>, options: RunWindowOptions): RunWindows {
  if (inputs.length !== labels.length) throw new RangeError(`${inputs.length} rows but ${labels.length} labels`)
  const stride = options.stride ?? 1
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`)
  const order = options.rows ?? Array.from({ length: inputs.length }, (_, i) => i)
  const rowWidth = order.length ? inputs[order[0]].length : 1
  const window = new FrameWindow(options.size, rowWidth)
  const width = 2 * rowWidth
  const chunks: Float32Array[] = []
  const windowLabels: number[] = []
  const ends: number[] = []
  let previous = -2
  for (const index of order) {
    if (index < 0 || index >= inputs.length) throw new RangeError(`row ${index} is not one of the ${inputs.length} rows`)
    if (index !== previous + 1 || labels[index] !== labels[previous]) window.reset()
    previous = index
    window.push(inputs[index])
    if (window.ready && (window.pushed - options.size) % stride === 0) {
      chunks.push(window.features())
      windowLabels.push(labels[index])
      ends.push(index)
    }
  }
  const matrix = new Float32Array(chunks.length * width)
  chunks.forEach((chunk, i) => matrix.set(chunk, i * width))
  return { matrix, width, count: chunks.length, labels: windowLabels, ends }
}

/**
 * Windows that straddle two positions, as a door moving between them makes:
 * for each pair [a, b] and each j of `firstRows`, the last j rows of label a
 * then the first size − j rows of label b (among `rows`, in their order).
 * Window features are a mean and a std, so the order inside the window
 * does not matter: one direction per pair is enough. A pair whose labels
 * lack the rows is skipped.
 * @param rows row indices to draw from (e.g. the fit part), in recording order
 * @param pairs label pairs, e.g. closed with each open angle
 * @param firstRows rows of the first label per window, each in 1..size − 1
 * @throws RangeError on bad sizes
 */
export function transitionWindows (
  inputs: ReadonlyArray<ArrayLike<number>>,
  labels: ArrayLike<number>,
  rows: readonly number[],
  size: number,
  pairs: ReadonlyArray<readonly [number, number]>,
  firstRows: readonly number[]
): RunWindows {
  const byLabel = new Map<number, number[]>()
  for (const row of rows) {
    const list = byLabel.get(labels[row])
    if (list) list.push(row)
    else byLabel.set(labels[row], [row])
  }
  const rowWidth = rows.length ? inputs[rows[0]].length : 1
  const width = 2 * rowWidth
  const window = new FrameWindow(size, rowWidth)
  const chunks: Float32Array[] = []
  const windowLabels: number[] = []
  const ends: number[] = []
  for (const [a, b] of pairs) {
    const first = byLabel.get(a) ?? []
    const second = byLabel.get(b) ?? []
    for (const j of firstRows) {
      if (!Number.isInteger(j) || j < 1 || j >= size) throw new RangeError(`a transition window takes 1..${size - 1} rows of its first label, got ${j}`)
      if (first.length < j || second.length < size - j) continue
      window.reset()
      for (const row of first.slice(first.length - j)) window.push(inputs[row])
      const taken = second.slice(0, size - j)
      for (const row of taken) window.push(inputs[row])
      chunks.push(window.features())
      windowLabels.push(b)
      ends.push(taken[taken.length - 1])
    }
  }
  const matrix = new Float32Array(chunks.length * width)
  chunks.forEach((chunk, i) => matrix.set(chunk, i * width))
  return { matrix, width, count: chunks.length, labels: windowLabels, ends }
}
