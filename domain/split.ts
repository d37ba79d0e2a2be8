/**
 * The blocked split. Frames of one label are consecutive packets of one
 * recording, so neighbours are near-duplicates: a random split puts twins on
 * both sides and scores ~.12 too high. Instead, for each label, the last
 * `holdout` share of its rows (in insertion order) is the test part — the
 * model is judged on frames recorded after everything it learned from.
 */

/** Row indices of the two parts, each in insertion order. */
export interface BlockedSplit {
  train: number[]
  test: number[]
}

/**
 * How many of a label's `count` rows form its tail: `holdout` × count rounded
 * up (at least the share asked for), leaving at least one row to train on.
 */
export function tailSize (count: number, holdout: number): number {
  if (holdout <= 0 || count <= 1) return 0
  // the epsilon keeps 0.2 × 400 = 80.00000000000001 from rounding up to 81
  return Math.min(count - 1, Math.ceil(count * holdout - 1e-9))
}

/**
 * Splits rows by label: each label's last `holdout` share of rows is the test
 * part, the rest the train part. Deterministic, never random.
 * @param angles the label of each row, in insertion order
 * @param holdout share of each label's rows to hold out, in [0, 1)
 * @throws Error when holdout is outside [0, 1)
 */
export function blockedSplit (angles: ArrayLike<number>, holdout: number): BlockedSplit {
  if (!(holdout >= 0 && holdout < 1)) throw new Error(`holdout must be a share in [0, 1), got ${holdout}`)
  const counts = new Map<number, number>()
  for (let i = 0; i < angles.length; i++) counts.set(angles[i], (counts.get(angles[i]) ?? 0) + 1)
  // a row is in the test part once fewer than tailSize rows of its label remain after it
  const remaining = new Map<number, number>(counts)
  const train: number[] = []
  const test: number[] = []
  for (let i = 0; i < angles.length; i++) {
    const angle = angles[i]
    const left = remaining.get(angle) as number
    remaining.set(angle, left - 1)
    if (left <= tailSize(counts.get(angle) as number, holdout)) test.push(i)
    else train.push(i)
  }
  return { train, test }
}

/**
 * Blocked split of a subset of rows (e.g. a validation slice cut from the
 * train part): indices are those of `rows`, the order theirs.
 */
export function blockedSplitOf (rows: readonly number[], angles: ArrayLike<number>, holdout: number): BlockedSplit {
  const split = blockedSplit(rows.map((row) => angles[row]), holdout)
  return { train: split.train.map((i) => rows[i]), test: split.test.map((i) => rows[i]) }
}
