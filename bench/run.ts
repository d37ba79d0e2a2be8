/**
 * `npm run bench [-- name …]`: runs the benchmarks in bench/*.bench.ts (all, or
 * the named ones), prints a table per benchmark and writes the figures as JSON
 * to bench/results/<name>.json (the latest run) and <name>-<timestamp>.json.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'

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

const benchDir = new URL('.', import.meta.url).pathname
const resultsDir = join(benchDir, 'results')
const wanted = process.argv.slice(2)
const available = readdirSync(benchDir).filter((file) => file.endsWith('.bench.ts')).map((file) => file.replace(/\.bench\.ts$/, '')).sort()
const selected = wanted.length ? wanted : available
for (const name of selected) {
  if (!available.includes(name)) {
    console.error(`bench: no bench/${name}.bench.ts (have: ${available.join(', ')})`)
    process.exit(1)
  }
}

mkdirSync(resultsDir, { recursive: true })
const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 1024 ** 3) }
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
let failed = 0
for (const name of selected) {
  console.log(`\n## ${name}`)
  const started = Date.now()
  try {
    const module = await import(`./${name}.bench.js`) as { default: () => Promise<BenchReport> }
    const report = await module.default()
    console.table(report.table)
    for (const note of report.notes ?? []) console.log(note)
    const json = JSON.stringify({ name: report.name, at: new Date().toISOString(), machine, seconds: (Date.now() - started) / 1000, results: report.results }, null, 2)
    writeFileSync(join(resultsDir, `${name}.json`), json + '\n')
    writeFileSync(join(resultsDir, `${name}-${stamp}.json`), json + '\n')
  } catch (err) {
    failed++
    console.error(`bench ${name} failed:`, err)
  }
}
process.exitCode = failed ? 1 : 0
