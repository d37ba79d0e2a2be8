/**
 * Figures for a door sensor where "always open" already scores high plain
 * accuracy: open/closed accuracy, balanced accuracy (mean of the closed and
 * open recalls) and F1 of "closed"; and the AUC of a score that should rank
 * positives above negatives (novelty).
 */

/** Open/closed figures; an undecided answer (null) counts as wrong for either truth. */
export interface OpenClosedFigures {
  accuracy: number
  /** (recall of closed + recall of open) / 2; a class with no rows is left out of the mean. */
  balancedAccuracy: number
  /** F1 of the closed class (0 when nothing is closed and nothing said closed). */
  closedF1: number
  rows: number
}

/**
 * @param closed whether each row truly is closed
 * @param saidClosed what was answered per row: true = closed, false = open, null = undecided (wrong either way)
 * @throws RangeError when the lengths differ
 */
export function openClosedFigures (closed: ArrayLike<boolean>, saidClosed: ArrayLike<boolean | null>): OpenClosedFigures {
  if (closed.length !== saidClosed.length) throw new RangeError(`${closed.length} truths but ${saidClosed.length} answers`)
  let closedRows = 0
  let openRows = 0
  let closedHit = 0
  let openHit = 0
  let falseClosed = 0
  for (let i = 0; i < closed.length; i++) {
    const said = saidClosed[i]
    if (closed[i]) {
      closedRows++
      if (said === true) closedHit++
    } else {
      openRows++
      if (said === false) openHit++
      else if (said === true) falseClosed++
    }
  }
  const rows = closed.length
  const recalls = [closedRows ? closedHit / closedRows : undefined, openRows ? openHit / openRows : undefined].filter((r): r is number => r !== undefined)
  const f1Denominator = 2 * closedHit + falseClosed + (closedRows - closedHit)
  return {
    accuracy: rows ? (closedHit + openHit) / rows : 0,
    balancedAccuracy: recalls.length ? recalls.reduce((a, b) => a + b, 0) / recalls.length : 0,
    closedF1: f1Denominator ? 2 * closedHit / f1Denominator : 0,
    rows
  }
}

/**
 * Area under the ROC curve of `positives` against `negatives`: the chance that
 * a random positive scores above a random negative (ties count half).
 * O((n + m) log(n + m)). 0.5 when either side is empty.
 */
export function rocAuc (negatives: ArrayLike<number>, positives: ArrayLike<number>): number {
  const n = negatives.length
  const m = positives.length
  if (n === 0 || m === 0) return 0.5
  const all: Array<{ score: number, positive: boolean }> = []
  for (let i = 0; i < n; i++) all.push({ score: negatives[i], positive: false })
  for (let i = 0; i < m; i++) all.push({ score: positives[i], positive: true })
  all.sort((a, b) => a.score - b.score)
  // Mann–Whitney U from mid-ranks
  let rankSum = 0
  for (let i = 0; i < all.length;) {
    let j = i
    while (j < all.length && all[j].score === all[i].score) j++
    const midRank = (i + 1 + j) / 2
    for (let t = i; t < j; t++) if (all[t].positive) rankSum += midRank
    i = j
  }
  return (rankSum - m * (m + 1) / 2) / (n * m)
}

/** The q-quantile (0..1) of values, linear between order statistics; NaN for none. */
export function quantile (values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const position = Math.min(1, Math.max(0, q)) * (sorted.length - 1)
  const low = Math.floor(position)
  const high = Math.min(sorted.length - 1, low + 1)
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low)
}
