/**
 * The benchmarks' one quantile: the nearest rank, `sorted[⌊q·n⌋]` (the last
 * value for q = 1), so a reported p99 is a time some request really took.
 * Production's `quantile` (domain/door-metrics.ts, linear between order
 * statistics) sets novelty thresholds; this one only reads bench figures.
 */

/** `q`-quantile (0..1) of ascending `sorted`, by nearest rank; NaN when empty. */
export function quantile (sorted: readonly number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : Number.NaN
}

/** The median of `values` in any order (not changed): {@link quantile} 0.5 of a sorted copy, the upper one of an even count. */
export function median (values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5)
}
