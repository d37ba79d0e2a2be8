/**
 * `npm run bench -- idle-doors`: what doors that send nothing cost (issue 20).
 *
 * For 10 and 10,000 doors: the whole app (buildApp on a temp DATA_DIR, not
 * listening), each door known (a keep-alive) and given 3 frames once through
 * the frames ingest, then left silent past STALE_AFTER_S (2 s here) and the
 * frame-rate window. Then, with nothing arriving:
 * - idle CPU: the process's CPU time over BENCH_IDLE_S seconds (the timers
 *   that walk doors, and whatever else runs), in ms per second;
 * - the previous design's refresh: it built every door's view once a second
 *   (DoorsService.list(), timed here per call);
 * - GET /doors through inject: every door, and a page of 100.
 * Medians of BENCH_REPS (5) repetitions where repeated; one run per size.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp, type App } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { rawPiFrames } from '../test/fixtures/frames.js'
import { median } from './lib/quantile.js'
import type { BenchReport } from './lib/report.js'

const SIZES = [10, 10_000]
const STALE_AFTER_S = 2

async function timed (run: () => unknown | Promise<unknown>, reps: number): Promise<number> {
  const ms: number[] = []
  for (let i = 0; i < reps; i++) {
    const started = performance.now()
    await run()
    ms.push(performance.now() - started)
  }
  return median(ms)
}

async function measure (doors: number, idleSeconds: number, reps: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'doorsense-idle-'))
  let app: App | undefined
  try {
    app = await buildApp(loadConfig({
      DATA_DIR: dir,
      LOG_LEVEL: 'warn',
      LOG_TO_FILE: 'false',
      TF_BACKEND: 'cpu',
      STALE_AFTER_S: String(STALE_AFTER_S),
      MAX_EVENT_LOOP_DELAY_MS: '0'
    }))
    await app.ready()
    const frames = rawPiFrames().slice(0, 3)
    const setupStarted = performance.now()
    for (let device = 0; device < doors; device++) {
      app.devices.keepAlive({ id: device, name: `pi-${device}`, addr: '127.0.0.1' })
      app.frames.ingest(device, frames, '127.0.0.1')
    }
    const setupSeconds = (performance.now() - setupStarted) / 1000
    // past STALE_AFTER_S and the frame-rate window: every door idle
    await sleep((STALE_AFTER_S + 8) * 1000)
    const before = process.cpuUsage()
    const wall = performance.now()
    await sleep(idleSeconds * 1000)
    const used = process.cpuUsage(before)
    const idleCpuMsPerS = (used.user + used.system) / 1000 / ((performance.now() - wall) / 1000)
    const running = app
    const previousRefreshMs = await timed(() => running.doors.list(), reps)
    const listAllMs = await timed(() => running.inject('/doors'), reps)
    const listPageMs = await timed(() => running.inject('/doors?limit=100&after=5000'), reps)
    return { doors, setupSeconds, idleCpuMsPerS, previousRefreshMs, listAllMs, listPageMs }
  } finally {
    await app?.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export default async function idleDoors (): Promise<BenchReport> {
  const idleSeconds = Number(process.env.BENCH_IDLE_S ?? 10)
  const reps = Number(process.env.BENCH_REPS ?? 5)
  const loadBefore = loadavg()[0]
  const rows: Array<Record<string, number>> = []
  for (const doors of SIZES) {
    rows.push(await measure(doors, idleSeconds, reps))
    process.stderr.write(`  ${doors} doors measured\n`)
  }
  const loadAfter = loadavg()[0]
  const table = rows.map((row) => ({
    doors: row.doors,
    'idle CPU ms/s': Number(row.idleCpuMsPerS.toFixed(2)),
    'previous refresh ms/s': Number(row.previousRefreshMs.toFixed(1)),
    'GET /doors ms': Number(row.listAllMs.toFixed(1)),
    'GET /doors?limit=100 ms': Number(row.listPageMs.toFixed(2))
  }))
  const notes = [
    `idle CPU: the process's CPU over ${idleSeconds} s with every door silent (past STALE_AFTER_S ${STALE_AFTER_S} s and the 5-s frame-rate window); ` +
      "it includes the runtime's own (GC, prom-client's default collectors are read only on a scrape).",
    'previous refresh: the once-a-second walk the doors service made before (a view of every door, DoorsService.list()); ' +
      'today it walks only doors that sent frames in the last few seconds, and the staleness check only doors not yet stale.',
    `GET /doors: inject, median of ${reps}; the first list of a process reads every door's calibration counts in one query.`,
    `one run per size; machine load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after.`
  ]
  return { name: 'idle-doors', table, results: { idleSeconds, reps, rows, loadAverage: { before: loadBefore, after: loadAfter } }, notes }
}
