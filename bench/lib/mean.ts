/** The mean and spread of a figure over seeds (the training benchmarks report mean ± sd). */

/** The arithmetic mean; NaN when empty. */
export function mean (values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length
}

/** Sample standard deviation (n − 1); 0 for one value. */
export function sampleSd (values: readonly number[]): number {
  if (values.length < 2) return 0
  const m = mean(values)
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1))
}
