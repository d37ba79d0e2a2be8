/** The benchmarks' one latency summary: how many, p50, p99 and the longest. */
import { quantile } from './quantile.js'

export interface LatencySummary {
  /** Latencies summarised (responses received). */
  requests: number
  p50: number
  p99: number
  max: number
}

/**
 * Summarises `times` (ms, one per response), sorting them in place: a run's
 * latencies can number millions, and the caller may read further quantiles
 * of the sorted array ({@link quantile}). NaN figures when there are none.
 */
export function latencySummary (times: number[]): LatencySummary {
  times.sort((a, b) => a - b)
  return { requests: times.length, p50: quantile(times, 0.5), p99: quantile(times, 0.99), max: times.at(-1) ?? Number.NaN }
}
