/**
 * `npm run bench -- door-model` (or `node --import tsx bench/door-model.bench.ts`
 * by itself): the measurements behind the windowed door-state engine's
 * defaults (ml/door/train.ts, domain/door-window.ts, domain/door-hysteresis.ts).
 *
 * Every row is the real pipeline: session A's blocked split (each angle's
 * last 20 % of rows held out), trainDoorModel on the rest, each test tail
 * replayed through a fresh DoorPipeline (window → predictor → hysteresis);
 * novelty AUC of windows of rpi-raw-frames.txt (another recording) and of the
 * test tails with their subcarriers permuted, against the held-out windows.
 *   1. window k ∈ {10, 15, 20, 25} × frame feature set, default hysteresis;
 *   2. hysteresis (enter / leave) on the chosen k and features (the same
 *      trained models replayed, no retraining);
 *   3. trainer sensitivity (epochs, L2, closed-loss weight, novelty summary);
 *   4. a small calibration: each angle's last 100 train frames only (~5 s at
 *      20 frames/s), judged on the same tails.
 * Figures are mean ± sd over seeds. The test tails are 7 segments of 37–88
 * frames: differences under ~.05–.1 are noise.
 *
 * BENCH_SEEDS=n overrides the seed count (default 3), BENCH_ONLY=regex runs
 * the matching rows only.
 */
import * as tf from '@tensorflow/tfjs'
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { DEFAULT_HYSTERESIS, type HysteresisOptions } from '../domain/door-hysteresis.js'
import { DOOR_FRAME_FEATURES, type DoorFrameFeatures } from '../domain/door-window.js'
import { blockedTails, permuteSubcarriers, replayTails, scoreReplay, type DoorEvaluation, type ShiftedSet, type Tail } from '../ml/door/evaluation.js'
import type { DoorTrainingInput } from '../ml/door/model-types.js'
import { DEFAULT_DOOR_TRAINING, resolveDoorTraining, trainDoorModel } from '../ml/door/train.js'
import { DoorPredictor } from '../ml/door/predictor.js'
import { meanSd, twoDecimals } from './lib/format.js'
import { mean, sampleSd } from './lib/mean.js'
import { loadRpiFrames, loadSessionA } from './lib/recordings.js'
import { printReport, resultsJson, type BenchReport } from './lib/report.js'

/** The shifted sets: another recording, and the test tails with permuted subcarriers. */
export function shiftedSets (tails: readonly Tail[]): ShiftedSet[] {
  return [
    { name: 'rpi-raw-frames', runs: [loadRpiFrames()] },
    { name: 'session A tails, subcarriers permuted', runs: tails.map((tail) => permuteSubcarriers(tail.frames)) }
  ]
}

type Options = Parameters<typeof trainDoorModel>[2]
type Figures = Omit<DoorEvaluation, 'holdout' | 'trainFrames' | 'testFrames' | 'tails' | 'trainingSeconds'> & { trainingSeconds: number }

/** One seed of one configuration, replayed under each hysteresis setting asked for. */
async function runOnce (
  train: DoorTrainingInput,
  tails: readonly Tail[],
  shifted: readonly ShiftedSet[],
  options: Options,
  hystereses: readonly HysteresisOptions[]
): Promise<Figures[]> {
  const before = tf.memory().numTensors
  const trained = await trainDoorModel(tf, train, options)
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  const figures = hystereses.map((hysteresis) => ({
    ...scoreReplay(predictor, replayTails(predictor, tails, hysteresis), shifted, hysteresis),
    trainingSeconds: trained.meta.trainingSeconds
  }))
  predictor.dispose()
  if (tf.memory().numTensors !== before) throw new Error(`leaked ${tf.memory().numTensors - before} tensors`)
  return figures
}

/** The summary of a configuration's runs, as a table row and as JSON. */
function summarise (name: string, runs: Figures[]): { row: Record<string, string | number>, summary: Record<string, number> } {
  const pick = (f: (r: Figures) => number): number[] => runs.map(f)
  const novelty = (i: number) => (r: Figures): number => r.novelty?.sets[i]?.auc ?? Number.NaN
  const summary = {
    windowAccuracy: mean(pick((r) => r.accuracy)),
    windowBalanced: mean(pick((r) => r.openClosed.balancedAccuracy)),
    windowClosedF1: mean(pick((r) => r.openClosed.closedF1)),
    doorAccuracy: mean(pick((r) => r.doorState.accuracy)),
    doorBalanced: mean(pick((r) => r.doorState.openClosed.balancedAccuracy)),
    doorClosedF1: mean(pick((r) => r.doorState.openClosed.closedF1)),
    doorAccuracySd: sampleSd(pick((r) => r.doorState.accuracy)),
    latencyFrames: Math.max(...pick((r) => r.doorState.latencyFrames)),
    aucRpi: mean(pick(novelty(0))),
    aucPermuted: mean(pick(novelty(1))),
    heldOutNovelShare: mean(pick((r) => r.novelty?.heldOutNovelShare ?? Number.NaN)),
    trainingSeconds: mean(pick((r) => r.trainingSeconds))
  }
  return {
    summary,
    row: {
      config: name,
      '7-class/win': meanSd(pick((r) => r.accuracy)),
      'bal/win': meanSd(pick((r) => r.openClosed.balancedAccuracy)),
      'F1c/win': meanSd(pick((r) => r.openClosed.closedF1)),
      '7-class/door': meanSd(pick((r) => r.doorState.accuracy)),
      'bal/door': meanSd(pick((r) => r.doorState.openClosed.balancedAccuracy)),
      'F1c/door': meanSd(pick((r) => r.doorState.openClosed.closedF1)),
      latency: summary.latencyFrames,
      'AUC rpi': meanSd(pick(novelty(0))),
      'AUC perm': meanSd(pick(novelty(1))),
      'held-out novel': twoDecimals(summary.heldOutNovelShare),
      'train s': Number(summary.trainingSeconds.toFixed(1))
    }
  }
}

/** Each angle's last `count` train frames (a calibration-sized set right before its tail). */
function lastFramesPerAngle (train: DoorTrainingInput, count: number): DoorTrainingInput {
  const seen = new Map<number, number>()
  const keep: number[] = []
  for (let i = train.angles.length - 1; i >= 0; i--) {
    const n = seen.get(train.angles[i]) ?? 0
    if (n < count) keep.push(i)
    seen.set(train.angles[i], n + 1)
  }
  keep.reverse()
  return { frames: keep.map((i) => train.frames[i]), angles: keep.map((i) => train.angles[i]) }
}

export default async function doorModel (): Promise<BenchReport> {
  await tf.setBackend('cpu')
  tf.enableProdMode()
  const session = loadSessionA()
  const { train, tails } = blockedTails(session, 0.2)
  const shifted = shiftedSets(tails)
  const seeds = Number(process.env.BENCH_SEEDS ?? 3)
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined
  const loadBefore = loadavg()[0]
  const D = DEFAULT_DOOR_TRAINING
  const table: BenchReport['table'] = []
  const results: Array<{
    section: string
    name: string
    options: unknown
    hysteresis: HysteresisOptions
    summary: Record<string, number>
    runs: Figures[]
  }> = []

  const run = async (
    section: string,
    configs: Array<{ name: string, options: Options, data?: DoorTrainingInput }>,
    hystereses: Array<{ name: string, hysteresis: HysteresisOptions }> = [{ name: '', hysteresis: D.hysteresis }]
  ): Promise<void> => {
    for (const config of configs) {
      const names = hystereses.map((h) => `${section}: ${config.name}${h.name ? `, ${h.name}` : ''}`)
      if (only && !names.some((name) => only.test(name))) continue
      const perHysteresis: Figures[][] = hystereses.map(() => [])
      for (let seed = 1; seed <= seeds; seed++) {
        const figures = await runOnce(config.data ?? train, tails, shifted, { ...config.options, seed }, hystereses.map((h) => h.hysteresis))
        figures.forEach((f, i) => perHysteresis[i].push(f))
        process.stderr.write(
          `  ${names[0]} seed ${seed}: door ${twoDecimals(figures[0].doorState.accuracy)}, ` +
            `bal ${twoDecimals(figures[0].doorState.openClosed.balancedAccuracy)} (${figures[0].trainingSeconds.toFixed(1)} s)\n`
        )
      }
      hystereses.forEach((h, i) => {
        const { row, summary } = summarise(names[i], perHysteresis[i])
        table.push(row)
        results.push({
          section,
          name: names[i],
          options: resolveDoorTraining({ ...config.options, hysteresis: h.hysteresis }),
          hysteresis: h.hysteresis,
          summary,
          runs: perHysteresis[i]
        })
      })
    }
  }

  // 1. window length × frame features
  const grid: Array<{ name: string, options: Options }> = []
  for (const features of DOOR_FRAME_FEATURES) {
    for (const window of [10, 15, 20, 25]) grid.push({ name: `k ${window}, ${features}`, options: { window, features: features as DoorFrameFeatures } })
  }
  await run('grid', grid)

  // 2. hysteresis on the chosen k and features: the same models replayed
  const h = (enter: number, leave: number, novelAfter = D.hysteresis.novelAfter): { name: string, hysteresis: HysteresisOptions } => ({
    name: `enter ${enter} leave ${leave}${novelAfter !== D.hysteresis.novelAfter ? ` M ${novelAfter}` : ''}`,
    hysteresis: { ...DEFAULT_HYSTERESIS, enter, leave, novelAfter }
  })
  await run('hysteresis', [{ name: `k ${D.window}, ${D.features}`, options: {} }], [h(1, 1), h(2, 3), h(3, 5), h(5, 8), h(3, 15), h(8, 15), h(3, 5, 30)])
  await run('hysteresis', [{ name: `k 15, ${D.features}`, options: { window: 15 } }], [h(1, 1), h(3, 5), h(5, 8), h(8, 15)])

  // 3. trainer sensitivity around the default
  await run('trainer', [
    { name: 'epochs ÷2', options: { epochs: Math.round(D.epochs / 2) } },
    { name: 'epochs ×3', options: { epochs: D.epochs * 3 } },
    { name: 'L2 0', options: { l2: 0 } },
    { name: 'L2 ×10', options: { l2: D.l2 * 10 } },
    { name: 'closed loss ×3', options: { closedLossWeight: 3 } },
    { name: 'stride 5', options: { stride: 5 } },
    { name: 'summary 64 rows', options: { novelty: { summaryRows: 64 } } },
    { name: 'novelty quantile .95', options: { novelty: { quantile: 0.95 } } }
  ])

  // 4. a calibration-sized train set
  await run('small calibration', [
    { name: `100 frames/angle, k ${D.window}`, options: {}, data: lastFramesPerAngle(train, 100) },
    { name: '100 frames/angle, k 15', options: { window: 15 }, data: lastFramesPerAngle(train, 100) },
    { name: `60 frames/angle, k ${D.window}`, options: {}, data: lastFramesPerAngle(train, 60) }
  ])

  // prediction cost of the default model: a micro-batch of 256 windows and single windows
  const trained = await trainDoorModel(tf, train, {})
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  const windows = replayTails(predictor, tails).windows.length
  const batch: Float32Array[] = []
  const { FrameWindow, doorFrameFeatures } = await import('../domain/door-window.js')
  const w = new FrameWindow(D.window, 103)
  for (const frame of tails.flatMap((tail) => tail.frames)) {
    w.push(doorFrameFeatures(frame, D.features))
    if (w.ready && batch.length < 256) batch.push(w.features())
  }
  const time = (fn: () => void, repeat: number): number => {
    fn()
    const started = performance.now()
    for (let i = 0; i < repeat; i++) fn()
    return (performance.now() - started) / repeat
  }
  const batchMs = time(() => predictor.predict(batch), 20)
  const singleMs = time(() => predictor.predict([batch[0]]), 200)
  const metaBytes = JSON.stringify(trained.meta).length
  predictor.dispose()
  const loadAfter = loadavg()[0]

  const notes = [
    `session A: ${session.frames.length} frames; blocked split (20 % tail per angle), ${tails.length} tails, ` +
      `${windows} test windows at k ${D.window}; ${seeds} seeds; mean±sd.`,
    'columns: per window (= per frame once the window is full) 7-class accuracy, open/closed balanced accuracy, closed F1; ' +
      'the same for the reported door state',
    '(frames from the first reported state on; unknown = wrong); latency = worst tail\'s first reporting frame; ' +
      'novelty AUC vs held-out windows; held-out novel = false-alarm share of single windows.',
    `DEFAULT = ${JSON.stringify(D)}`,
    `predict cost (default model, ${trained.meta.novelty.rows}-row novelty summary): ` +
      `${batchMs.toFixed(2)} ms per 256 windows (${(batchMs / 256 * 1000).toFixed(1)} µs/window), ` +
      `${singleMs.toFixed(3)} ms for 1 window; meta JSON ${(metaBytes / 1024).toFixed(0)} KiB.`,
    `machine load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after, on ${tf.getBackend()} (pure JS).`
  ]
  return {
    name: 'door-model',
    table,
    results: { configs: results, predictCost: { batch256Ms: batchMs, singleMs }, metaBytes, loadAverage: { before: loadBefore, after: loadAfter } },
    notes
  }
}

// run by itself: print the table and write bench/results/door-model.json as bench/run.ts does
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now()
  const report = await doorModel()
  printReport(report)
  const results = new URL('results/', import.meta.url)
  mkdirSync(results, { recursive: true })
  writeFileSync(new URL('door-model.json', results), resultsJson(report, started))
}
