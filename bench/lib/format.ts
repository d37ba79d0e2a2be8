/** How the benchmarks print their figures, in one place so every table reads alike. */
import { mean, sampleSd } from './mean.js'

/** `value` to `digits` decimals, as a number for the JSON; NaN for a figure that is not finite (no runs, no baseline). */
export function round (value: number, digits = 0): number {
  return Number.isFinite(value) ? Number(value.toFixed(digits)) : Number.NaN
}

/** A share or score in 0..1 to two decimals, short: ".87", and "1" for 1.00. */
export function twoDecimals (value: number): string {
  return value.toFixed(2).replace(/^0\./, '.').replace(/^1\.00$/, '1')
}

/** Mean ± sample standard deviation of a figure over the seeds, as {@link twoDecimals}: ".87±.02". */
export function meanSd (values: number[]): string {
  return `${twoDecimals(mean(values))}±${twoDecimals(sampleSd(values))}`
}

/** A target's verdict in the notes. */
export function verdict (met: boolean): string {
  return met ? 'met' : 'MISSED'
}
