/**
 * `npm run bench -- calibration-matrix`: what a door calibrated on some of
 * session A's angles reads at every angle, and what the ajar self-check says
 * of that calibration (issue 19).
 *
 * Session A's blocked split: each angle's first 80 % of rows is what a user
 * would capture, the last 20 % its tail. For each calibration subset
 * ({0, 90}, {0, 15, 90}, {0, 45, 90}, {0, 15, 45, 90}, {0, 30, 60, 90}, all
 * seven) and each seed, a door is calibrated on the subset's captured rows:
 * - `now`: calibrateDoorModel as the server runs it (the door's model on all
 *   its frames, the blocked evaluation, the ajar self-check, the gate at
 *   DOOR_CALIBRATION_FLOOR .9), and the protocol's verdict before training;
 * - `before`: the previous design (trainDoorModel with novelty margin 1, no
 *   swing windows, novelAfter 20; no protocol and no self-check).
 * Then every angle is replayed through a fresh pipeline, as a device that
 * just came online: the tail of a calibrated angle, the whole run of an
 * uncalibrated one. Each cell is the share of counted frames (from the
 * first reported state on) read closed / open / unknown, mean over seeds.
 *
 * BENCH_SEEDS=n overrides the seed count (default 3).
 */
import * as tf from '@tensorflow/tfjs'
import { loadavg } from 'node:os'
import { DEFAULT_HYSTERESIS } from '../domain/door-hysteresis.js'
import { calibrateDoorModel, calibrationProblems, verdictOf } from '../ml/door/calibration.js'
import { blockedTails, replayTails, type DoorEvaluation, type SelfCheck, type Tail } from '../ml/door/evaluation.js'
import type { DoorTrainingInput } from '../ml/door/model-types.js'
import { trainDoorModel } from '../ml/door/train.js'
import { DoorPredictor } from '../ml/door/predictor.js'
import { twoDecimals } from './lib/format.js'
import { mean, sampleSd } from './lib/mean.js'
import { loadSessionA } from './lib/recordings.js'
import type { BenchReport } from './lib/report.js'

const ANGLES = [0, 15, 30, 45, 60, 75, 90]
const SUBSETS = [[0, 90], [0, 15, 90], [0, 45, 90], [0, 15, 45, 90], [0, 30, 60, 90], ANGLES]
const FLOOR = 0.9
/** The previous design's novelty (issue 12): margin 1, no swing windows, 20 novel windows in a row. */
const BEFORE = { novelty: { margin: 1, transitions: false } }
const BEFORE_NOVEL_AFTER = 20

type Design = 'before' | 'now'

/** How one angle read: shares of counted frames. */
interface Reading { angle: number, calibrated: boolean, frames: number, closed: number, open: number, unknown: number }

interface Run {
  design: Design
  subset: number[]
  seed: number
  readings: Reading[]
  seconds: number
  /** now only: the protocol's reasons (before training), the self-check and the gate. */
  protocol?: string[]
  selfCheck?: SelfCheck
  gate?: { activate: boolean, balancedAccuracy: number | null, reasons: string[] }
  doorState?: DoorEvaluation['doorState']['openClosed']
}

function select (input: DoorTrainingInput, angles: readonly number[]): DoorTrainingInput {
  const keep = input.angles.flatMap((angle, i) => angles.includes(angle) ? [i] : [])
  return { frames: keep.map((i) => input.frames[i]), angles: keep.map((i) => input.angles[i]) }
}

function readAll (predictor: DoorPredictor, subset: readonly number[], tails: readonly Tail[], session: DoorTrainingInput, novelAfter?: number): Reading[] {
  const hysteresis = novelAfter === undefined ? predictor.meta.hysteresis : { ...predictor.meta.hysteresis, novelAfter }
  return ANGLES.map((angle) => {
    const calibrated = subset.includes(angle)
    const frames = calibrated ? (tails.find((tail) => tail.angle === angle)?.frames ?? []) : session.frames.filter((_, i) => session.angles[i] === angle)
    const counted = replayTails(predictor, [{ angle, frames }], hysteresis).frames
    const share = (state: string) => counted.length ? counted.filter((f) => f.state === state).length / counted.length : 0
    return { angle, calibrated, frames: counted.length, closed: share('closed'), open: share('open'), unknown: share('unknown') }
  })
}

async function runBefore (
  train: DoorTrainingInput,
  tails: readonly Tail[],
  session: DoorTrainingInput,
  subset: number[],
  seed: number
): Promise<Run> {
  const started = performance.now()
  // novelAfter 20 is below today's floor (it must exceed k): trained with a legal value, replayed with 20
  const trained = await trainDoorModel(tf, select(train, subset), { ...BEFORE, seed, hysteresis: { novelAfter: 26 } })
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    return {
      design: 'before',
      subset,
      seed,
      readings: readAll(predictor, subset, tails, session, BEFORE_NOVEL_AFTER),
      seconds: (performance.now() - started) / 1000
    }
  } finally {
    predictor.dispose()
  }
}

async function runNow (
  train: DoorTrainingInput,
  tails: readonly Tail[],
  session: DoorTrainingInput,
  subset: number[],
  seed: number
): Promise<Run> {
  const started = performance.now()
  const input = select(train, subset)
  const protocol = calibrationProblems(input)
  const trained = await calibrateDoorModel(tf, input, { seed }, { gate: { floor: FLOOR, acceptAjarAsClosed: false } })
  const seconds = (performance.now() - started) / 1000
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    const evaluation = trained.meta.evaluation as DoorEvaluation | undefined
    const verdict = verdictOf(trained.meta)
    return {
      design: 'now',
      subset,
      seed,
      readings: readAll(predictor, subset, tails, session),
      seconds,
      protocol,
      selfCheck: evaluation?.selfCheck,
      gate: verdict && { activate: verdict.activate, balancedAccuracy: verdict.balancedAccuracy, reasons: verdict.reasons },
      doorState: evaluation?.doorState.openClosed
    }
  } finally {
    predictor.dispose()
  }
}

/** "c/o/u" shares of one angle over seeds. */
function cell (runs: readonly Run[], angle: number): string {
  const readings = runs.map((run) => run.readings.find((r) => r.angle === angle) as Reading)
  const mark = readings[0].calibrated ? '*' : ''
  return `${mark}${twoDecimals(mean(readings.map((r) => r.closed)))}/` +
    `${twoDecimals(mean(readings.map((r) => r.open)))}/${twoDecimals(mean(readings.map((r) => r.unknown)))}`
}

/** What the self-check and the gate said, over seeds. */
function verdictText (runs: readonly Run[]): string {
  const first = runs[0]
  if (first.design === 'before') return 'no protocol, no self-check'
  if (first.protocol?.length) return `protocol refuses: ${first.protocol[0].replace(/:.*/, '')}`
  const failing = new Map<number, number[]>()
  for (const run of runs) {
    for (const check of run.selfCheck?.checks ?? []) {
      if (!check.passed) failing.set(check.angle, [...(failing.get(check.angle) ?? []), check.closedShare])
    }
  }
  const passed = runs.filter((run) => run.selfCheck?.passed).length
  const activated = runs.filter((run) => run.gate?.activate).length
  const checks = [...failing].map(([angle, shares]) => `${angle}° ${twoDecimals(Math.min(...shares))}–${twoDecimals(Math.max(...shares))}`).join(', ')
  return `self-check ${passed}/${runs.length} pass${checks ? ` (read closed: ${checks})` : ''}; activated ${activated}/${runs.length}`
}

export default async function calibrationMatrix (): Promise<BenchReport> {
  await tf.setBackend('cpu')
  tf.enableProdMode()
  const session = loadSessionA()
  const { train, tails } = blockedTails(session, 0.2)
  const seeds = Number(process.env.BENCH_SEEDS ?? 3)
  const loadBefore = loadavg()[0]
  const runs: Run[] = []
  for (const subset of SUBSETS) {
    for (let seed = 1; seed <= seeds; seed++) {
      for (const design of ['before', 'now'] as const) {
        const run = design === 'before'
          ? await runBefore(train, tails, session, subset, seed)
          : await runNow(train, tails, session, subset, seed)
        runs.push(run)
        process.stderr.write(
          `  {${subset.join(', ')}} ${design} seed ${seed}: ${run.seconds.toFixed(1)} s` +
            `${run.selfCheck ? `, self-check ${run.selfCheck.passed ? 'passes' : 'fails'}` : ''}\n`
        )
      }
    }
  }
  const table: BenchReport['table'] = []
  for (const subset of SUBSETS) {
    for (const design of ['before', 'now'] as const) {
      const these = runs.filter((run) => run.design === design && run.subset === subset)
      const row: Record<string, string | number> = { calibration: `{${subset.join(', ')}}`, design }
      for (const angle of ANGLES) row[`${angle}°`] = cell(these, angle)
      row.verdict = verdictText(these)
      row['train s'] = Number(mean(these.map((run) => run.seconds)).toFixed(1))
      table.push(row)
    }
  }
  const all = runs.filter((run) => run.design === 'now' && run.subset === ANGLES)
  const balanced = all.map((run) => run.doorState?.balancedAccuracy ?? Number.NaN)
  const closedF1 = all.map((run) => run.doorState?.closedF1 ?? Number.NaN)
  const loadAfter = loadavg()[0]
  const notes = [
    'cells: share of counted frames read closed/open/unknown (mean over seeds); ' +
      '* = a calibrated angle (its held-out tail), else the whole run of an angle the door was not calibrated at.',
    `before: margin 1, no swing windows, novelAfter ${BEFORE_NOVEL_AFTER}; ` +
      `now: margin 1.5, swing windows, novelAfter ${DEFAULT_HYSTERESIS.novelAfter}, the closed/ajar/open protocol, ` +
      `the ajar self-check (at most 10 % read closed) and the floor ${FLOOR}.`,
    'calibration time (train s): now = the door\'s model + the blocked evaluation + one left-out model per open angle but the smallest, ' +
      'in this process (the server runs it in its worker).',
    "all seven, now, the calibration's own blocked evaluation (its captured rows' last 20 %): " +
      `door-state balanced accuracy ${twoDecimals(mean(balanced))} ± ${twoDecimals(sampleSd(balanced))}, ` +
      `closed F1 ${twoDecimals(mean(closedF1))} ± ${twoDecimals(sampleSd(closedF1))} over ${seeds} seeds.`,
    `${seeds} seeds; session A ${session.frames.length} frames; ` +
      `machine load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; ${tf.getBackend()} backend.`
  ]
  return { name: 'calibration-matrix', table, results: { floor: FLOOR, seeds, runs, loadAverage: { before: loadBefore, after: loadAfter } }, notes }
}
