/**
 * `npm run bench -- fuzz`: the long fuzz run. The same generator and checks
 * as the short run in npm test (test/fixtures/fuzz.ts), FUZZ_RUNS cases per
 * operation (default 500: about 22,000 requests) on one app built on a temp
 * DATA_DIR with DEVICE_TOKEN set, a small model trained and device 7 known.
 * The seed is random unless FUZZ_SEED is set; it is printed, so a run that
 * finds something can be replayed. Prints per operation the cases, the
 * statuses seen and the failures, then each failure (request and answer),
 * and how long closing the app took (a training the fuzz started must stop
 * with it). FUZZ_ONLY (a regular expression) keeps the operations whose
 * `METHOD /path` it matches; FUZZ_TRACE=1 prints each request before it is sent.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../core/app.js'
import { testConfig } from '../test/helper.js'
import { describeFailures, FUZZ_ENV, fuzzContract, fuzzSeed, prepareFuzzApp } from '../test/fixtures/fuzz.js'
import type { BenchReport } from './lib/report.js'

export default async function fuzzBench (): Promise<BenchReport> {
  const runs = Number(process.env.FUZZ_RUNS ?? 500)
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${process.env.FUZZ_RUNS}`)
  const seed = fuzzSeed(Math.floor(Math.random() * 2 ** 31))
  console.log(`fuzz: seed ${seed} (FUZZ_SEED=${seed} replays it), ${runs} cases per operation`)
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-bench-fuzz-'))
  try {
    const app = await buildApp(testConfig(dataDir, FUZZ_ENV))
    let closeMs = 0
    let report
    try {
      await app.ready()
      const hints = await prepareFuzzApp(app)
      const only = process.env.FUZZ_ONLY ? new RegExp(process.env.FUZZ_ONLY) : undefined
      report = await fuzzContract(app, hints, {
        seed,
        runs,
        streamRuns: Math.min(runs, 50),
        keepFailures: 10,
        ...(only ? { only: (operation) => only.test(operation.id) } : {})
      })
    } finally {
      const closing = Date.now()
      await app.close()
      closeMs = Date.now() - closing
    }
    const table = report.operations.map((operation) => ({
      operation: operation.operation,
      cases: operation.cases,
      statuses: Object.entries(operation.statuses).map(([status, count]) => `${status}×${count}`).join(' '),
      failures: operation.failures.filter((failure) => failure.status !== 0).length +
        Number(/^(\d+) more/.exec(operation.failures.find((failure) => failure.status === 0)?.problems[0] ?? '')?.[1] ?? 0),
      ms: operation.ms
    }))
    const failing = table.reduce((sum, row) => sum + row.failures, 0)
    const notes = [
      `seed ${seed}: ${report.cases} cases over ${report.operations.length} operations in ${(report.ms / 1000).toFixed(1)} s ` +
        `(${(report.cases / (report.ms / 1000)).toFixed(0)} cases/s); ${failing} failing`,
      `app.close() took ${closeMs} ms`
    ]
    if (report.failures.length) notes.push('failures (up to 10 kept per operation):', describeFailures(report.failures, 40))
    return {
      name: 'fuzz',
      table,
      results: { seed, runs, cases: report.cases, seconds: report.ms / 1000, closeMs, failing, operations: report.operations },
      notes
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}
