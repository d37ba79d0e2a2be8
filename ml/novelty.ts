/**
 * Window novelty: how unlike a model's calibration a window of frames is.
 * A model keeps a small summary of its (standardised) training windows; a
 * window's score is its mean distance to the `neighbours` nearest summary
 * rows over a threshold, so a score above 1 is novel. Max softmax
 * probability cannot do this job: windows of another recording come out
 * *more* confident (ML-NOTES).
 *
 * - {@link summariseWindows}: builds the summary of labelled frames in
 *   recording order. Each label's tail is held out of the summary and sets
 *   the threshold (a high quantile of the held-out windows' distances ×
 *   `margin`, room for the drift of the day). Windows that straddle two
 *   positions (a door moving between them, synthesised from the captured
 *   runs) are part of the summary, so a swing is not novelty.
 * - {@link NoveltyScorer}: scores windows against a stored summary.
 * - {@link WindowNoveltyModel}: a whole novelty model over raw frames
 *   (frame features, window, standardisation, summary), what the global
 *   per-frame model carries so that an uncalibrated door can say it does not
 *   know this room.
 *
 * No I/O, no tfjs: plain typed-array loops.
 */
import {
  DOOR_FRAME_WIDTH, doorFrameFeatures, doorFrameFeaturesInto, FrameWindow, runWindows, transitionWindows, type DoorFrameFeatures
} from '../domain/door-window.js'
import { quantile } from '../domain/door-metrics.js'
import { tailSize } from '../domain/split.js'
import { fitStandardisation, type Standardisation } from '../domain/standardise.js'

/** Novelty settings: a bounded sample of calibration windows and a k-nearest-neighbour distance to it. */
export interface NoveltyOptions {
  /** Neighbours averaged for the distance. */
  neighbours: number
  /** Calibration windows kept in the summary (evenly spaced over the fit windows), besides the transitions. */
  summaryRows: number
  /** Quantile of the held-out windows' distances taken as the threshold. */
  quantile: number
  /** Factor on that quantile (room for drift over the day). */
  margin: number
  /** Share of each angle's rows (its tail) held out to set the threshold. */
  holdout: number
  /** Add windows that straddle two calibrated positions to the summary (a swing is familiar). */
  transitions: boolean
}

/**
 * The measured defaults (bench/novelty-margin.bench.ts on session A, and the
 * second recording's figures in the issue that set them): a margin of 1.5
 * flags none of a door's own later windows and still 85–100 % of another
 * recording's; margin 1 flagged a fifth of a door's own later windows there.
 */
export const DEFAULT_NOVELTY: Readonly<NoveltyOptions> = Object.freeze({
  neighbours: 5,
  summaryRows: 64,
  quantile: 0.99,
  margin: 1.5,
  holdout: 0.2,
  transitions: true
})

/** Held-out windows per label the threshold needs at least (when the label has rows enough). */
const MIN_HELD_OUT_WINDOWS = 10

/**
 * Frames between two synthesised swing windows' mixes (k 25: 2, 5, … 23
 * frames of the first position, 8 windows a pair). Measured on session A
 * with two of its positions' subcarriers permuted (positions a channel
 * tells apart): a clean swing's windows scored up to 3× the threshold
 * against the calibration windows; with swings every 3 frames and 2
 * neighbours, 0 % novel, while another recording stays 100 % novel. A swing
 * of 3 mixes a pair left them at 1.3×.
 */
const TRANSITION_STEP = 3
/** Neighbours averaged for a window's distance to the swing rows. */
const TRANSITION_NEIGHBOURS = 2

/**
 * Most swing windows a summary keeps (evenly spaced over its pairs and
 * mixes). A window novel to the calibration windows is scanned against every
 * swing row, and a calibration of L positions makes 8 × (2L − 3) of them:
 * 88 for session A's seven angles, up to 1,432 for a door calibrated at
 * every degree. The cap bounds a window's scan at summaryRows (64) + 128
 * rows; calibrations of up to nine positions keep all their swings.
 */
export const MAX_TRANSITION_ROWS = 128

/** The novelty summary as stored: standardised calibration windows, row-major, float32 in base64. */
export interface NoveltySummary {
  neighbours: number
  /** Mean distance to the `neighbours` nearest summary rows above which a window is novel. */
  threshold: number
  quantile: number
  margin: number
  /** Calibration windows in the summary. */
  rows: number
  width: number
  /** (rows + transitions.rows) × width float32 values, little-endian, base64: the calibration windows, then the swings. */
  float32Base64: string
  /** Windows the threshold was taken from. */
  heldOutWindows: number
  /**
   * Windows straddling two positions (a swing), scored on their own: a window
   * is familiar if it is near the calibration windows or near the swings,
   * each against its own threshold. Absent: none (an older model, or off).
   */
  transitions?: {
    rows: number
    neighbours: number
    threshold: number
    heldOutWindows: number
  }
}

/** Checks novelty options. @throws RangeError naming the bad one */
export function checkNoveltyOptions (options: NoveltyOptions, prefix = 'novelty'): NoveltyOptions {
  const integer = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${prefix}.${name} must be an integer in ${min}..${max}, got ${value}`)
  }
  const real = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isFinite(value) || value < min || value > max) throw new RangeError(`${prefix}.${name} must be a number in ${min}..${max}, got ${value}`)
  }
  integer('neighbours', options.neighbours, 1, 64)
  integer('summaryRows', options.summaryRows, 1, 4096)
  real('quantile', options.quantile, 0, 1)
  real('margin', options.margin, 0.01, 100)
  real('holdout', options.holdout, 0.01, 0.5)
  if (typeof options.transitions !== 'boolean') throw new RangeError(`${prefix}.transitions must be true or false, got ${JSON.stringify(options.transitions)}`)
  return options
}

/** Standardised windows as a row-major matrix. */
export interface WindowMatrix {
  matrix: Float32Array
  count: number
}

/**
 * Which label splits rows between summary (fit) and threshold (held out):
 * each label's tail (options.holdout of its rows, at least enough for
 * {@link MIN_HELD_OUT_WINDOWS} windows while the rest keeps one window).
 */
export function noveltySplit (labels: readonly number[], window: number, holdout: number): { fitRows: number[], heldOutRows: number[] } {
  const counts = new Map<number, number>()
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1)
  const tailOf = (n: number): number => Math.max(0, Math.min(n - window, Math.max(tailSize(n, holdout), window + MIN_HELD_OUT_WINDOWS - 1)))
  const tails = new Map([...counts].map(([label, n]) => [label, tailOf(n)]))
  const remaining = new Map(counts)
  const fitRows: number[] = []
  const heldOutRows: number[] = []
  labels.forEach((label, i) => {
    const left = remaining.get(label) as number
    remaining.set(label, left - 1)
    if (left <= (tails.get(label) as number)) heldOutRows.push(i)
    else fitRows.push(i)
  })
  return { fitRows, heldOutRows }
}

/**
 * The pairs of positions a door swings between: every label with the
 * lowest (closed) and every label with the highest (fully open) — a door
 * rests closed or wide open, and moves from there to anywhere. Each pair once, low first.
 */
export function swingPairs (labels: readonly number[]): Array<[number, number]> {
  const sorted = [...new Set(labels)].sort((a, b) => a - b)
  if (sorted.length < 2) return []
  const low = sorted[0]
  const high = sorted[sorted.length - 1]
  const pairs: Array<[number, number]> = []
  for (const label of sorted.slice(1)) pairs.push([low, label])
  for (const label of sorted.slice(1, -1)) pairs.push([label, high])
  return pairs
}

/**
 * Summarises windows of labelled frames for novelty: the summary is an
 * evenly spaced sample of the fit windows (each label's rows but its tail)
 * whose threshold is options.quantile of the held-out windows' distances ×
 * options.margin; with options.transitions, windows straddling the end of
 * one position and the start of another ({@link swingPairs}, every few
 * frames of mix) with their own threshold, from held-out swings.
 * @param inputs one row of window inputs per frame, recording order
 * @param labels the label of each frame
 * @param standardise turns a matrix of window features into standardised ones (a copy)
 * @throws Error when the frames do not vary (a threshold of 0) or there is no held-out window
 */
export function summariseWindows (
  inputs: ReadonlyArray<ArrayLike<number>>,
  labels: readonly number[],
  window: number,
  standardise: (matrix: Float32Array) => Float32Array,
  options: NoveltyOptions
): NoveltySummary {
  const { fitRows, heldOutRows } = noveltySplit(labels, window, options.holdout)
  const fit = runWindows(inputs, labels, { size: window, rows: fitRows })
  const heldOut = runWindows(inputs, labels, { size: window, rows: heldOutRows })
  if (fit.count === 0 || heldOut.count === 0) {
    throw new Error(`novelty needs a window of ${window} frames of one label to learn from and one to check on: record longer runs`)
  }
  const width = fit.width
  const rows = Math.min(options.summaryRows, fit.count)
  // evenly spaced over the fit windows (which come label by label, in time order)
  const sample = evenlySpacedRows(standardise(fit.matrix), fit.count, rows, width)
  const neighbours = Math.min(options.neighbours, rows)
  const threshold = quantile(knnDistances(standardise(heldOut.matrix), heldOut.count, sample, rows, width, neighbours), options.quantile) * options.margin
  if (!(threshold > 0)) throw new Error('novelty threshold came out as 0: the calibration frames do not vary')
  const summary: NoveltySummary = {
    neighbours,
    threshold,
    quantile: options.quantile,
    margin: options.margin,
    rows,
    width,
    float32Base64: '',
    heldOutWindows: heldOut.count
  }
  let all = sample
  if (options.transitions) {
    // swings: their own rows and threshold (held-out swings against the fit swings), since a
    // window of two positions lies far from either and its distances run on another scale
    const pairs = swingPairs(labels)
    const firstRows = transitionMixes(window)
    const fitSwings = transitionWindows(inputs, labels, fitRows, window, pairs, firstRows)
    const heldOutSwings = transitionWindows(inputs, labels, heldOutRows, window, pairs, firstRows)
    if (fitSwings.count > 0 && heldOutSwings.count > 0) {
      // at most MAX_TRANSITION_ROWS of them, evenly spaced over the pairs and mixes: a novel window scans them all
      const swingCount = Math.min(MAX_TRANSITION_ROWS, fitSwings.count)
      const swingRows = evenlySpacedRows(standardise(fitSwings.matrix), fitSwings.count, swingCount, width)
      const swingNeighbours = Math.min(TRANSITION_NEIGHBOURS, swingCount)
      const heldOutSwingDistances = knnDistances(standardise(heldOutSwings.matrix), heldOutSwings.count, swingRows, swingCount, width, swingNeighbours)
      const swingThreshold = quantile(heldOutSwingDistances, options.quantile) * options.margin
      if (swingThreshold > 0) {
        all = new Float32Array((rows + swingCount) * width)
        all.set(sample)
        all.set(swingRows, rows * width)
        summary.transitions = { rows: swingCount, neighbours: swingNeighbours, threshold: swingThreshold, heldOutWindows: heldOutSwings.count }
      }
    }
  }
  summary.float32Base64 = Buffer.from(all.buffer, all.byteOffset, all.byteLength).toString('base64')
  return summary
}

/** `rows` of a `count`-row matrix (row-major, `width` values a row), evenly spaced; all of them, in order, when rows = count. */
function evenlySpacedRows (matrix: Float32Array, count: number, rows: number, width: number): Float32Array {
  if (rows === count) return matrix
  const out = new Float32Array(rows * width)
  for (let r = 0; r < rows; r++) {
    const source = Math.floor((r + 0.5) * count / rows)
    out.set(matrix.subarray(source * width, (source + 1) * width), r * width)
  }
  return out
}

/** Rows of the first position in the synthesised swing windows of k frames: every few frames from 1 to k − 1. */
export function transitionMixes (window: number): number[] {
  const mixes: number[] = []
  for (let j = Math.max(1, Math.round(TRANSITION_STEP / 2)); j < window; j += TRANSITION_STEP) mixes.push(j)
  return mixes
}

/** Columns summed between two early-exit checks of the kNN scan. */
const KNN_BLOCK = 16

/**
 * Mean Euclidean distance of each query row to its `neighbours` nearest
 * reference rows. Plain typed-array loops: at most rows × width
 * multiply-adds per query, with a partial insertion sort of the few nearest.
 *
 * Reference rows are summed four at a time: each row's squared distance is
 * still one running sum over its columns in column order, so every distance
 * comes out bit for bit as a row-by-row scan computes it (and so do the k
 * nearest and their mean), but the four sums are independent chains the CPU
 * overlaps, where one row's chain of dependent adds left it waiting on each
 * add (2× faster on session A's windows, bench/door-path.bench.ts). Exact
 * early exit: a block of rows stops once every partial sum has reached the
 * current k-th nearest (none of them can be among the nearest then), checked
 * every {@link KNN_BLOCK} columns.
 */
export function knnDistances (
  queries: Float32Array,
  queryCount: number,
  reference: Float32Array,
  referenceCount: number,
  width: number,
  neighbours: number
): Float64Array {
  const out = new Float64Array(queryCount)
  const nearest = new Float64Array(neighbours)
  const blocked = referenceCount - (referenceCount % 4)
  for (let q = 0; q < queryCount; q++) {
    nearest.fill(Number.POSITIVE_INFINITY)
    const qBase = q * width
    for (let r = 0; r < blocked; r += 4) {
      const worst = nearest[neighbours - 1]
      const base0 = r * width
      const base1 = base0 + width
      const base2 = base1 + width
      const base3 = base2 + width
      let d0 = 0
      let d1 = 0
      let d2 = 0
      let d3 = 0
      for (let start = 0; start < width; start += KNN_BLOCK) {
        const end = Math.min(width, start + KNN_BLOCK)
        for (let c = start; c < end; c++) {
          const x = queries[qBase + c]
          const e0 = x - reference[base0 + c]
          const e1 = x - reference[base1 + c]
          const e2 = x - reference[base2 + c]
          const e3 = x - reference[base3 + c]
          d0 += e0 * e0
          d1 += e1 * e1
          d2 += e2 * e2
          d3 += e3 * e3
        }
        if (d0 >= worst && d1 >= worst && d2 >= worst && d3 >= worst) break
      }
      // a partial sum (an abandoned row) is already ≥ the k-th nearest: keepNearest passes it by
      keepNearest(nearest, d0)
      keepNearest(nearest, d1)
      keepNearest(nearest, d2)
      keepNearest(nearest, d3)
    }
    for (let r = blocked; r < referenceCount; r++) {
      const rBase = r * width
      const worst = nearest[neighbours - 1]
      let d = 0
      for (let start = 0; start < width && d < worst; start += KNN_BLOCK) {
        const end = Math.min(width, start + KNN_BLOCK)
        for (let c = start; c < end; c++) {
          const diff = queries[qBase + c] - reference[rBase + c]
          d += diff * diff
        }
      }
      keepNearest(nearest, d)
    }
    let sum = 0
    for (let i = 0; i < neighbours; i++) sum += Math.sqrt(nearest[i])
    out[q] = sum / neighbours
  }
  return out
}

/** Inserts squared distance `d` into the ascending `nearest` (dropping the last) if it is below the last. */
function keepNearest (nearest: Float64Array, d: number): void {
  let i = nearest.length - 1
  if (d >= nearest[i]) return
  while (i > 0 && nearest[i - 1] > d) {
    nearest[i] = nearest[i - 1]
    i--
  }
  nearest[i] = d
}

/** A kNN scan with {@link knnDistances}'s contract (the benchmark passes an earlier one to time it through the same path). */
export type KnnScan = typeof knnDistances

/** A stored summary, decoded once, scoring standardised windows. */
export class NoveltyScorer {
  readonly summary: Readonly<NoveltySummary>
  readonly #rows: Float32Array
  readonly #swings: Float32Array
  readonly #scan: KnnScan

  /**
   * @param scan the kNN scan (a benchmark passes an earlier one, to time it through the same path)
   * @throws Error when the stored rows do not fit the summary's shape
   */
  constructor (summary: NoveltySummary, scan: KnnScan = knnDistances) {
    const buffer = Buffer.from(summary.float32Base64, 'base64')
    const all = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength))
    const swingRows = summary.transitions?.rows ?? 0
    if (all.length !== (summary.rows + swingRows) * summary.width) {
      throw new Error(`novelty summary holds ${all.length} values, meta says (${summary.rows} + ${swingRows}) × ${summary.width}`)
    }
    if (!(summary.threshold > 0) || (summary.transitions && !(summary.transitions.threshold > 0))) throw new Error('novelty thresholds must be above 0')
    this.#rows = all.subarray(0, summary.rows * summary.width)
    this.#swings = all.subarray(summary.rows * summary.width)
    this.#scan = scan
    this.summary = summary
  }

  /**
   * Each standardised window's distance over its threshold: to the
   * calibration windows, or, for a window novel to those, the nearer of that
   * and its distance to the swings (above 1 is novel either way). A window
   * near the calibration needs no swing scan: most of them, most of the time.
   */
  scores (standardised: Float32Array, count: number): Float64Array {
    const { rows, width, neighbours, threshold, transitions } = this.summary
    const scores = this.#scan(standardised, count, this.#rows, rows, width, neighbours)
    const novel: number[] = []
    for (let i = 0; i < count; i++) {
      scores[i] /= threshold
      if (scores[i] > 1) novel.push(i)
    }
    if (transitions && novel.length) {
      const queries = new Float32Array(novel.length * width)
      novel.forEach((i, q) => queries.set(standardised.subarray(i * width, (i + 1) * width), q * width))
      const swings = this.#scan(queries, novel.length, this.#swings, transitions.rows, width, transitions.neighbours)
      novel.forEach((i, q) => { scores[i] = Math.min(scores[i], swings[q] / transitions.threshold) })
    }
    return scores
  }

  /** {@link scores} of one standardised window, in its two parts (the same values). */
  parts (standardised: Float32Array): ScoreParts {
    const { rows, width, neighbours, threshold, transitions } = this.summary
    const calibration = this.#scan(standardised, 1, this.#rows, rows, width, neighbours)[0] / threshold
    if (!transitions || calibration <= 1) return { calibration, swings: undefined }
    return { calibration, swings: this.#scan(standardised, 1, this.#swings, transitions.rows, width, transitions.neighbours)[0] / transitions.threshold }
  }
}

/** One window's distance over each threshold: to the calibration windows, and to the swings (scanned only for a window novel to those). */
export interface ScoreParts {
  calibration: number
  swings: number | undefined
}

/** The score {@link NoveltyScorer.scores} gives a window of these parts: the nearer of the two, above 1 novel. */
function scoreOfParts ({ calibration, swings }: ScoreParts): number {
  return swings === undefined ? calibration : Math.min(calibration, swings)
}

/** The meta format of a {@link WindowNoveltyMeta}. */
export const WINDOW_NOVELTY_FORMAT = 'doorsense-window-novelty/1'

/** A novelty model over raw frames, as a global model's meta carries it (JSON-serialisable). */
export interface WindowNoveltyMeta {
  format: typeof WINDOW_NOVELTY_FORMAT
  /** k: frames per window. */
  window: number
  featureSet: DoorFrameFeatures
  /** Statistics of the training windows, applied before the distance. */
  standardisation: Standardisation
  summary: NoveltySummary
}

/** Window and features of the global model's novelty: those of a door model (k 25, centred log-magnitudes + phase differences). */
export const GLOBAL_NOVELTY_WINDOW = 25
export const GLOBAL_NOVELTY_FEATURES: DoorFrameFeatures = 'centred-log-magnitudes+phase-diff'
/**
 * The global model's margin: stricter than a door's 1.5, because the global
 * model answers only for doors nobody calibrated, where "I do not know this
 * room" is the honest answer. Measured on session A (blocked split, 3 seeds,
 * bench/novelty-margin.bench.ts): its own later windows are flagged 0 % at
 * margins 1–2; rpi-raw-frames.txt 100 % at 1 and 1.25, 85 % at 1.5, 0 % at
 * 2; permuted subcarriers 100 % throughout.
 */
export const GLOBAL_NOVELTY_MARGIN = 1.25

/**
 * Builds a novelty model of labelled frames (106 values each, recording
 * order): windows of `window` frames inside runs of one label, standardised
 * with their own statistics, summarised by {@link summariseWindows} (margin
 * {@link GLOBAL_NOVELTY_MARGIN} unless options say otherwise).
 * Per-frame novelty does not work (AUC .51 on another recording's raw
 * frames); over 25-frame windows it does (1.00).
 * @throws Error when the frames cannot make a summary (too short runs)
 */
export function buildWindowNovelty (
  frames: ReadonlyArray<ArrayLike<number>>,
  labels: readonly number[],
  options: { window?: number, featureSet?: DoorFrameFeatures, novelty?: Partial<NoveltyOptions> } = {}
): WindowNoveltyMeta {
  const window = options.window ?? GLOBAL_NOVELTY_WINDOW
  const featureSet = options.featureSet ?? GLOBAL_NOVELTY_FEATURES
  const novelty = checkNoveltyOptions({ ...DEFAULT_NOVELTY, margin: GLOBAL_NOVELTY_MARGIN, ...options.novelty })
  const inputs = frames.map((frame) => doorFrameFeatures(frame, featureSet))
  const all = runWindows(inputs, labels, { size: window })
  if (all.count === 0) throw new Error(`no run of ${window} consecutive frames of one label: novelty needs longer runs`)
  const standardisation = fitStandardisation(all.matrix, all.width)
  const summary = summariseWindows(inputs, labels, window, (matrix) => standardiseCopy(matrix, standardisation), novelty)
  return { format: WINDOW_NOVELTY_FORMAT, window, featureSet, standardisation, summary }
}

/** A standardised copy of a row-major matrix, in float32 arithmetic as a predictor does it. */
export function standardiseCopy (matrix: Float32Array, stats: Standardisation): Float32Array {
  const width = stats.mean.length
  const out = new Float32Array(matrix.length)
  const inverse = stats.std.map((s) => 1 / s)
  for (let base = 0; base < matrix.length; base += width) {
    for (let c = 0; c < width; c++) out[base + c] = (matrix[base + c] - stats.mean[c]) * inverse[c]
  }
  return out
}

/** A loaded {@link WindowNoveltyMeta}: scores windows of raw frames. */
export class WindowNoveltyModel {
  readonly meta: Readonly<WindowNoveltyMeta>
  readonly #scorer: NoveltyScorer
  readonly #mean: Float32Array
  readonly #inverseStd: Float32Array

  /**
   * @param scan the kNN scan ({@link NoveltyScorer})
   * @throws Error when the meta is not a window novelty model's or does not fit
   */
  constructor (meta: WindowNoveltyMeta, scan?: KnnScan) {
    if (meta.format !== WINDOW_NOVELTY_FORMAT) throw new Error(`not a window novelty model (format ${JSON.stringify(meta.format)})`)
    const width = 2 * DOOR_FRAME_WIDTH
    if (meta.standardisation.mean.length !== width || meta.summary.width !== width) {
      throw new Error(`window novelty meta does not fit: standardisation ${meta.standardisation.mean.length}, ` +
        `summary ${meta.summary.width}, expected ${width}`)
    }
    this.meta = meta
    this.#scorer = new NoveltyScorer(meta.summary, scan)
    this.#mean = Float32Array.from(meta.standardisation.mean)
    this.#inverseStd = Float32Array.from(meta.standardisation.std, (s) => 1 / s)
  }

  /**
   * A fresh per-device stream of this model's windows, scoring every
   * `stride`-th, and at most `maxScansPerSecond` a second (0 = no bound).
   */
  stream (stride?: number, maxScansPerSecond?: number): NoveltyStream {
    return new NoveltyStream(this, stride, maxScansPerSecond)
  }

  /** Scores window features (as {@link FrameWindow.features} gives them), in place standardised. @returns score per window (above 1 is novel) */
  score (windows: readonly Float32Array[]): Float64Array {
    const width = 2 * DOOR_FRAME_WIDTH
    const x = new Float32Array(windows.length * width)
    windows.forEach((features, r) => x.set(this.standardise(features), r * width))
    return this.#scorer.scores(x, windows.length)
  }

  /** Window features, standardised as the summary's rows were. */
  standardise (features: ArrayLike<number>): Float32Array {
    const width = 2 * DOOR_FRAME_WIDTH
    const x = new Float32Array(width)
    for (let c = 0; c < width; c++) x[c] = (features[c] - this.#mean[c]) * this.#inverseStd[c]
    return x
  }

  /** The parts of one standardised window's score ({@link NoveltyScorer.parts}). */
  parts (standardised: Float32Array): ScoreParts {
    return this.#scorer.parts(standardised)
  }
}

/**
 * Windows a {@link NoveltyStream} lets pass between two scored ones: a
 * window shares k − 1 of its k frames with the next, so neighbours score
 * alike, and the scan is most of a window's cost (bench/novelty-margin.bench.ts).
 */
export const NOVELTY_STRIDE = 5

/** Seconds of scans a stream may make at once after a quiet spell (a batch of frames sent together). */
const SCAN_BURST_SECONDS = 2

/** One device's frames through a {@link WindowNoveltyModel}: its window, and the window scores once full. */
export class NoveltyStream {
  readonly model: WindowNoveltyModel
  readonly stride: number
  readonly maxScansPerSecond: number
  readonly #window: FrameWindow
  readonly #row = new Float64Array(DOOR_FRAME_WIDTH)
  /** Windows since the last scored one, and its score. */
  #sinceScored = 0
  #lastScore = 0
  /**
   * The last scanned window, when it was novel, and its score's parts: what
   * bounds the windows after it (see {@link #scoreOf}).
   */
  #anchor: { window: Float32Array, parts: ScoreParts } | undefined
  /** Windows the bound decided without a scan. */
  #bounded = 0
  /** Scans the stream may make now (a token bucket of SCAN_BURST_SECONDS × maxScansPerSecond), and when it was last filled. */
  #scans = 0
  #filledAt: number | undefined

  /**
   * @param stride score every stride-th window; the others repeat the last score (1 = every window)
   * @param maxScansPerSecond most windows scored a second, on average (bursts of two seconds' worth); 0 = no bound.
   *   The server's (DOOR_NOVELTY_MAX_SCANS, 10) is above what a Pi at 20 frames/s needs (4 at stride 5), so only
   *   a device flooding frames (or a client classifying thousands a second under one ID) has its stride stretched:
   *   its scan time is bounded, and its windows, overlapping by k − 1 frames, still move slowly enough to be read
   *   a few times a second.
   */
  constructor (model: WindowNoveltyModel, stride = NOVELTY_STRIDE, maxScansPerSecond = 0) {
    if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`novelty stride must be a positive integer, got ${stride}`)
    if (!(maxScansPerSecond >= 0)) throw new RangeError(`novelty scans per second must be 0 or more, got ${maxScansPerSecond}`)
    this.model = model
    this.stride = stride
    this.maxScansPerSecond = maxScansPerSecond
    this.#window = new FrameWindow(model.meta.window, DOOR_FRAME_WIDTH)
  }

  /**
   * Adds frames (106 values each, arrival order) that came at `at` (ms).
   * @returns a score for each window they completed (the first window of a stream is always scored)
   */
  push (frames: ReadonlyArray<ArrayLike<number>>, at = Date.now()): Float64Array {
    this.#fill(at)
    const scores: number[] = []
    for (const frame of frames) {
      doorFrameFeaturesInto(frame, this.model.meta.featureSet, this.#row)
      this.#window.push(this.#row)
      if (!this.#window.ready) continue
      const first = this.#window.pushed === this.model.meta.window
      // a window past its stride waits for a scan to spare: the next one takes it
      if (first || (++this.#sinceScored >= this.stride && this.#scans >= 1)) {
        this.#sinceScored = 0
        if (this.maxScansPerSecond > 0) this.#scans = Math.max(0, this.#scans - 1)
        this.#lastScore = this.#scoreOf(this.model.standardise(this.#window.features()))
      }
      scores.push(this.#lastScore)
    }
    return Float64Array.from(scores)
  }

  /** Forgets the window (after silence: old frames must not mix with new). */
  reset (): void {
    this.#window.reset()
    this.#sinceScored = 0
    this.#anchor = undefined
  }

  /** Windows this stream's bound decided without a scan, since it was made. */
  get bounded (): number {
    return this.#bounded
  }

  /**
   * A standardised window's score. A window near a novel one is novel too,
   * and the triangle inequality says so without a scan: each distance to a
   * summary row is at least the anchor's less the distance δ between the two
   * windows, so the mean of the k nearest is at least the anchor's mean less
   * δ. While that bound stays above the threshold (both parts), the window
   * is novel, and the bound is its score (a lower bound of the scan's, above
   * 1 as the scan's is); otherwise it is scanned, and a novel one becomes
   * the anchor. A window shares k − 1 of its k frames with the next, so a
   * door in a room unlike the calibration is scanned a fraction of the time
   * (on another recording, 80 % of the windows scored every 5th were
   * decided by the bound); a familiar window is scanned as before (its scan
   * stops early), and the verdicts are the scan's exactly.
   */
  #scoreOf (window: Float32Array): number {
    const anchor = this.#anchor
    if (anchor !== undefined) {
      let squared = 0
      for (let c = 0; c < window.length; c++) {
        const d = window[c] - anchor.window[c]
        squared += d * d
      }
      const delta = Math.sqrt(squared)
      const { threshold, transitions } = this.model.meta.summary
      const calibration = anchor.parts.calibration - delta / threshold
      const swings = transitions && anchor.parts.swings !== undefined ? anchor.parts.swings - delta / transitions.threshold : undefined
      const bound = scoreOfParts({ calibration, swings })
      if (bound > 1) {
        this.#bounded++
        return bound
      }
    }
    const parts = this.model.parts(window)
    const score = scoreOfParts(parts)
    this.#anchor = score > 1 ? { window, parts } : undefined
    return score
  }

  /** Adds the scans earned since the last fill (unbounded: always one to spare). */
  #fill (at: number): void {
    const rate = this.maxScansPerSecond
    if (rate === 0) {
      this.#scans = 1
      return
    }
    const burst = rate * SCAN_BURST_SECONDS
    this.#scans = this.#filledAt === undefined ? burst : Math.min(burst, this.#scans + Math.max(0, at - this.#filledAt) * rate / 1000)
    this.#filledAt = at
  }
}
