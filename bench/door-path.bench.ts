/**
 * `npm run bench -- door-path`: the door-state path's CPU per frame with the
 * request's frames of one door taken in batches of 1, 20 and 100 (issue 23),
 * before and after, in one run.
 *
 * The path is what a request's frames go through once decoded and stored,
 * on the server's own DoorStates (buildApp on a temp DATA_DIR, nothing
 * listens; app.doors.states, as bench/door-state.bench.ts does):
 * - a door with its own model: DoorStates.observeWindows — each frame into
 *   the door's window (running sums), one DoorPredictor.predict call for the
 *   windows the batch completes (both heads in one tf.matMul, then each
 *   window's novelty: a kNN scan of the model's summary, and of its swing
 *   rows for a window novel to the calibration), then the hysteresis;
 *   on session A frames it did not learn from (familiar: one scan) and on
 *   rpi-raw-frames.txt (another room: every window novel, both scans);
 * - a door on the global model: one global predict call for the batch, then
 *   the window novelty (every 5th window scored) and the vote smoother.
 * "before" is the code as it was: the kNN scan one reference row at a time
 * (test/fixtures/knn-reference.ts, verbatim; injected through the same
 * DoorPredictor / WindowNoveltyModel), and for the global door the novelty
 * of the whole batch first, then the answers (DoorStates.observeNovelty +
 * observe, as DoorFeed ran them). "after" is today's: the four-row scan and
 * DoorStates.observeGlobal (novelty and answer frame by frame).
 *
 * Measured in the process's CPU time (process.cpuUsage around the calls,
 * user + system; time descheduled on the shared machine does not count),
 * median and min–max over BENCH_REPS (7) repetitions of BENCH_REP_MS (150)
 * per row, the repetitions of all rows interleaved so a burst of load hits
 * every row alike. Before timing, the same frames go through both at
 * batches 1, 20 and 100 and the door changes they make are compared.
 *
 * Models trained once here on session A (each angle's first 300 frames):
 * the door model as a calibration trains it (trainDoorModel, seed 3; all
 * seven angles: 64 summary rows + 88 swing rows) and the global model
 * (trainModel, seed 1, 20 epochs: speed does not depend on the epochs).
 */
import * as tf from '@tensorflow/tfjs'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../core/app.js'
import { loadConfig } from '../core/config.js'
import { DoorPredictor } from '../ml/door/predictor.js'
import { trainDoorModel } from '../ml/door/train.js'
import { Predictor } from '../ml/global/predictor.js'
import { trainModel } from '../ml/global/trainer.js'
import { WindowNoveltyModel } from '../ml/novelty.js'
import { knnDistancesRowByRow } from '../test/fixtures/knn-reference.js'
import { round } from './lib/format.js'
import { median } from './lib/quantile.js'
import { loadRpiFrames, readSessionA } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const BATCHES = [1, 20, 100] as const
const CALIBRATION_FRAMES = 300

/** One timed row: `run` feeds one batch of `frames` frames. */
interface Timed {
  scenario: string
  variant: 'before' | 'after'
  batch: number
  run: () => unknown
}

interface TimedResult {
  scenario: string
  variant: 'before' | 'after'
  batch: number
  /** CPU µs per frame (user + system), one per repetition. */
  cpuUsPerFrame: number[]
  median: number
  min: number
  max: number
}

/** A warm-up of each row, then `reps` interleaved rounds of `repMs` per row: CPU µs per frame. */
function timeAll (rows: readonly Timed[], reps: number, repMs: number): TimedResult[] {
  const runFor = (row: Timed, ms: number): number => {
    let calls = 0
    const before = process.cpuUsage()
    const started = performance.now()
    while (performance.now() - started < ms) {
      row.run()
      calls++
    }
    const cpu = process.cpuUsage(before)
    return (cpu.user + cpu.system) / (calls * row.batch)
  }
  for (const row of rows) runFor(row, Math.max(100, repMs))
  const samples = rows.map(() => [] as number[])
  for (let r = 0; r < reps; r++) rows.forEach((row, i) => samples[i].push(runFor(row, repMs)))
  return rows.map((row, i) => ({
    scenario: row.scenario,
    variant: row.variant,
    batch: row.batch,
    cpuUsPerFrame: samples[i],
    median: median(samples[i]),
    min: Math.min(...samples[i]),
    max: Math.max(...samples[i])
  }))
}

/** Batches of `size` consecutive frames from a rotating start (up to 32 distinct batches), so each call sees other frames. */
function rotating<T> (items: readonly T[], size: number): () => T[] {
  const batches = Array.from({ length: Math.max(1, Math.min(32, Math.floor(items.length / size))) }, (_, b) =>
    Array.from({ length: size }, (_, i) => items[(b * size + i) % items.length]))
  let next = 0
  return () => batches[next++ % batches.length]
}

const sig = (value: number) => value >= 100 ? round(value) : value >= 10 ? round(value, 1) : round(value, 2)

export default async function doorPathBench (): Promise<BenchReport> {
  const reps = Number(process.env.BENCH_REPS ?? 7)
  const repMs = Number(process.env.BENCH_REP_MS ?? 150)
  await tf.setBackend('cpu')
  tf.enableProdMode()
  const dataDir = mkdtempSync(join(tmpdir(), 'doorsense-bench-door-path-'))
  const app = await buildApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'error', LOG_TO_FILE: 'false', ADMIN_TOKEN: 'bench-admin-token-0123456789' }))
  const disposables: Array<{ dispose: () => void }> = []
  try {
    // ---------------------------------------------------------------- the models
    const rows = readSessionA()
    const byAngle = new Map<number, Float32Array[]>()
    for (const row of rows) byAngle.set(row.angle, [...byAngle.get(row.angle) ?? [], row.features])
    const calibration = [...byAngle].flatMap(([angle, frames]) => frames.slice(0, CALIBRATION_FRAMES).map((frame) => ({ frame, angle })))
    const trainingStarted = performance.now()
    const door = await trainDoorModel(tf, { frames: calibration.map((c) => c.frame), angles: calibration.map((c) => c.angle) }, { seed: 3 })
    const global = await trainModel(
      tf,
      { kind: 'csi', features: calibration.map((c) => c.frame), angles: calibration.map((c) => c.angle) },
      { seed: 1, epochs: 20 }
    )
    const trainingSeconds = (performance.now() - trainingStarted) / 1000
    const globalNovelty = global.meta.novelty
    if (!globalNovelty) throw new Error(`the global model carries no window novelty: ${global.meta.noveltyProblem}`)
    const ownBefore = await DoorPredictor.load(tf, door.artifacts, door.meta, { scan: knnDistancesRowByRow })
    const ownAfter = await DoorPredictor.load(tf, door.artifacts, door.meta)
    const globalPredictor = await Predictor.load(tf, global.artifacts, global.meta)
    disposables.push(ownBefore, ownAfter, globalPredictor)
    const models = {
      before: { version: 'door-before', predictor: ownBefore, closedOrAjar: [] },
      after: { version: 'door-after', predictor: ownAfter, closedOrAjar: [] }
    }
    const novelty = {
      before: { version: 'global-before', model: new WindowNoveltyModel(globalNovelty, knnDistancesRowByRow) },
      after: { version: 'global-after', model: new WindowNoveltyModel(globalNovelty) }
    }
    const labels = global.meta.labels
    const meta = door.meta
    console.error(
      `door model k ${meta.window}, ${meta.labels.length} angles, novelty ${meta.novelty.rows} rows + ${meta.novelty.transitions?.rows ?? 0} swing rows, ` +
        `global model with window novelty (${globalNovelty.summary.rows} + ${globalNovelty.summary.transitions?.rows ?? 0} rows), ` +
        `trained in ${trainingSeconds.toFixed(1)} s`
    )

    // frames the models did not learn from: the rest of each angle, angle after angle (the door moves at each seam), and another room
    const familiar = [...byAngle.values()].flatMap((frames) => frames.slice(CALIBRATION_FRAMES))
    const otherRoom = loadRpiFrames()
    const states = app.doors.states
    let nextDevice = 1000
    type Path = (device: number, frames: Float32Array[]) => unknown
    const paths: Record<'own' | 'global', Record<'before' | 'after', Path>> = {
      own: {
        before: (device, frames) => states.observeWindows(device, frames, models.before),
        after: (device, frames) => states.observeWindows(device, frames, models.after)
      },
      global: {
        before: (device, frames) => {
          // as DoorFeed ran it: the batch's novelty as it came in, the answers after
          states.observeNovelty(device, frames, novelty.before)
          return states.observe(device, globalPredictor.predict(frames), labels, Date.now(), 'global')
        },
        after: (device, frames) => states.observeGlobal(device, frames, globalPredictor.predict(frames), labels, novelty.after, Date.now(), 'global')
      }
    }
    const scenarios = [
      { scenario: 'own model, familiar frames (session A after the calibration)', path: paths.own, frames: familiar },
      { scenario: 'own model, another room (rpi-raw-frames.txt: every window novel)', path: paths.own, frames: otherRoom },
      { scenario: 'global model + window novelty (session A after its training frames)', path: paths.global, frames: familiar }
    ]

    // ---------------------------------------------------------------- the same door changes?
    type Seen = { state: string, angle: number | null, confidence: number, needsRecalibration: boolean }
    const changesOf = (path: Path, frames: readonly Float32Array[], batch: number): Seen[] => {
      const device = nextDevice++
      const seen: Seen[] = []
      const listener = (door: Seen & { device: number }) => {
        const { state, angle, confidence, needsRecalibration } = door
        if (door.device === device) seen.push({ state, angle, confidence, needsRecalibration })
      }
      states.on('change', listener)
      for (let start = 0; start < frames.length; start += batch) path(device, frames.slice(start, start + batch))
      states.off('change', listener)
      return seen
    }
    const checks = scenarios.map(({ scenario, path, frames }) => {
      const journey = frames.slice(0, 2000)
      const single = changesOf(path.before, journey, 1)
      const same = (other: Seen[]) => JSON.stringify(other) === JSON.stringify(single)
      const after = Object.fromEntries(BATCHES.map((batch) => [batch, same(changesOf(path.after, journey, batch))]))
      const before = Object.fromEntries(BATCHES.map((batch) => [batch, same(changesOf(path.before, journey, batch))]))
      return { scenario, frames: journey.length, changes: single.length, afterSameAsBeforeOneAtATime: after, beforeSameAsBeforeOneAtATime: before }
    })
    for (const check of checks) {
      if (!Object.values(check.afterSameAsBeforeOneAtATime).every(Boolean)) {
        throw new Error(`${check.scenario}: the door changes differ after (${JSON.stringify(check)})`)
      }
    }

    // ---------------------------------------------------------------- timing
    const timed: Timed[] = []
    for (const { scenario, path, frames } of scenarios) {
      for (const batch of BATCHES) {
        for (const variant of ['before', 'after'] as const) {
          const device = nextDevice++
          const feed = rotating(frames, batch)
          timed.push({ scenario, variant, batch, run: () => path[variant](device, feed()) })
        }
      }
    }
    console.error(`${timed.length} rows × ${reps} repetitions of ${repMs} ms …`)
    const measured = timeAll(timed, reps, repMs)
    const find = (scenario: string, variant: 'before' | 'after', batch: number) =>
      measured.find((row) => row.scenario === scenario && row.variant === variant && row.batch === batch) as TimedResult

    const table: BenchReport['table'] = []
    for (const { scenario } of scenarios) {
      for (const batch of BATCHES) {
        const before = find(scenario, 'before', batch)
        const after = find(scenario, 'after', batch)
        table.push({
          path: scenario,
          batch,
          'before µs/frame': sig(before.median),
          'before min–max': `${sig(before.min)}–${sig(before.max)}`,
          'after µs/frame': sig(after.median),
          'after min–max': `${sig(after.min)}–${sig(after.max)}`,
          'after / before': round(after.median / before.median, 2)
        })
      }
    }
    const notes = [
      `one run; 'µs/frame' = the process's CPU time (user + system) per frame, median of ${reps} interleaved repetitions of ${repMs} ms per row; ` +
        `load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} at the end (shared 2-core machine)`,
      `models: door k ${meta.window}, ${meta.labels.length} angles, novelty ${meta.novelty.neighbours}-NN over ${meta.novelty.rows} rows ` +
        `(+ ${meta.novelty.transitions?.rows ?? 0} swing rows, ${meta.novelty.transitions?.neighbours ?? 0}-NN, for windows novel to those); ` +
        `global ${global.meta.labels.length} classes, window novelty every 5th window; trained in ${trainingSeconds.toFixed(1)} s on the cpu backend`,
      ...checks.map((check) =>
        `same door changes, ${check.scenario}: ${check.frames} frames, ${check.changes} changes one at a time before; ` +
        `after at batches ${BATCHES.join('/')}: ${BATCHES.map((b) => check.afterSameAsBeforeOneAtATime[b] ? 'identical' : 'DIFFERENT').join('/')}; ` +
        `before at batches ${BATCHES.join('/')}: ${BATCHES.map((b) => check.beforeSameAsBeforeOneAtATime[b] ? 'identical' : 'different').join('/')}`)
    ]
    return {
      name: 'door-path',
      table,
      notes,
      results: {
        settings: { reps, repMs, calibrationFrames: CALIBRATION_FRAMES },
        models: {
          trainingSeconds,
          door: {
            window: meta.window,
            labels: meta.labels,
            novelty: { rows: meta.novelty.rows, neighbours: meta.novelty.neighbours, transitions: meta.novelty.transitions }
          },
          global: { labels, novelty: { rows: globalNovelty.summary.rows, transitions: globalNovelty.summary.transitions } }
        },
        checks,
        measured,
        loadavg: loadavg()
      }
    }
  } finally {
    for (const item of disposables) item.dispose()
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
