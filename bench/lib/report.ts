/**
 * What a benchmark returns, and how its report is printed and recorded:
 * shared by bench/run.ts and a benchmark run by itself, so every
 * bench/results/<name>.json has one shape.
 */
import { cpus, totalmem } from 'node:os'

/** What a benchmark module's default export returns. */
export interface BenchReport {
  name: string
  /** Rows printed as a table. */
  table: Array<Record<string, string | number>>
  /** Everything measured, written to JSON. */
  results: unknown
  /** Lines printed under the table (targets met or missed, notes). */
  notes?: string[]
}

/** Prints the table and the notes under it. */
export function printReport (report: BenchReport): void {
  console.table(report.table)
  for (const note of report.notes ?? []) console.log(note)
}

/** The text of bench/results/<name>.json for `report`, the run having started at `started` (Date.now()). */
export function resultsJson (report: BenchReport, started: number): string {
  const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 1024 ** 3) }
  return JSON.stringify({
    name: report.name,
    at: new Date().toISOString(),
    machine,
    seconds: (Date.now() - started) / 1000,
    results: report.results
  }, null, 2) + '\n'
}
