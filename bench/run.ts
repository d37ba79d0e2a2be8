/**
 * `npm run bench [-- name …]`: runs the benchmarks in bench/*.bench.ts (all, or
 * the named ones), prints a table per benchmark and writes the figures as JSON
 * to bench/results/<name>.json (the latest run) and <name>-<timestamp>.json.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { printReport, resultsJson, type BenchReport } from './lib/report.js'

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
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
let failed = 0
for (const name of selected) {
  console.log(`\n## ${name}`)
  const started = Date.now()
  try {
    const module = await import(`./${name}.bench.js`) as { default: () => Promise<BenchReport> }
    const report = await module.default()
    printReport(report)
    const json = resultsJson(report, started)
    // a bench may report one part of itself under a name of its own (ingest's formats alone: ingest-formats)
    writeFileSync(join(resultsDir, `${report.name}.json`), json)
    writeFileSync(join(resultsDir, `${report.name}-${stamp}.json`), json)
  } catch (err) {
    failed++
    console.error(`bench ${name} failed:`, err)
  }
}
process.exitCode = failed ? 1 : 0
