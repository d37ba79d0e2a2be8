/**
 * Feature standardisation: (x − mean) / std per column, with mean and std
 * taken from the train part only (statistics of the test part would leak into
 * the model) and stored with the model, so inference applies the very same
 * transform.
 */

/** Per-column statistics of a train part. */
export interface Standardisation {
  mean: number[]
  std: number[]
}

/**
 * Below this std (relative to the column's scale) a column counts as constant,
 * e.g. CH32, the DC null, always 0. Its std is stored as 1 so it maps to 0
 * instead of dividing by zero.
 */
const CONSTANT_COLUMN = 1e-6

/**
 * Mean and (population) std of each column of a row-major matrix, over the
 * rows listed in `rows` (default: all). Sums run in float64.
 * @throws Error when there is no row or the matrix does not fit the width
 */
export function fitStandardisation (matrix: Float32Array, width: number, rows?: ArrayLike<number>): Standardisation {
  if (!(width > 0) || matrix.length % width !== 0) throw new Error(`matrix of ${matrix.length} values is not made of rows of ${width}`)
  const count = rows ? rows.length : matrix.length / width
  if (count === 0) throw new Error('cannot standardise on zero rows')
  const sum = new Float64Array(width)
  for (let r = 0; r < count; r++) {
    const base = (rows ? rows[r] : r) * width
    for (let c = 0; c < width; c++) sum[c] += matrix[base + c]
  }
  const mean = Array.from(sum, (s) => s / count)
  // second pass around the mean: no catastrophic cancellation for large offsets
  const squares = new Float64Array(width)
  for (let r = 0; r < count; r++) {
    const base = (rows ? rows[r] : r) * width
    for (let c = 0; c < width; c++) {
      const d = matrix[base + c] - mean[c]
      squares[c] += d * d
    }
  }
  const std = Array.from(squares, (s, c) => {
    const sd = Math.sqrt(s / count)
    return sd > CONSTANT_COLUMN * Math.max(1, Math.abs(mean[c])) ? sd : 1
  })
  return { mean, std }
}

/**
 * Standardises a row-major matrix in place with stored statistics.
 * @returns the same matrix
 * @throws Error when the statistics do not fit the width
 */
export function applyStandardisation (matrix: Float32Array, stats: Standardisation): Float32Array {
  const width = stats.mean.length
  if (width === 0 || stats.std.length !== width || matrix.length % width !== 0) {
    throw new Error(`standardisation of ${width} columns does not fit a matrix of ${matrix.length} values`)
  }
  const inverse = stats.std.map((s) => 1 / s)
  for (let base = 0; base < matrix.length; base += width) {
    for (let c = 0; c < width; c++) matrix[base + c] = (matrix[base + c] - stats.mean[c]) * inverse[c]
  }
  return matrix
}
