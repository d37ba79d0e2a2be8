import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { readFileSync } from 'node:fs'
import { NoveltyGate } from '../../domain/door-hysteresis.js'
import { DOOR_FRAME_WIDTH, doorFrameFeatures, doorFrameFeaturesInto, FrameWindow, transitionWindows } from '../../domain/door-window.js'
import { parseFrame } from '../../domain/frames.js'
import { permuteSubcarriers, windowNovelty } from '../../ml/door/evaluation.js'
import { resolveDoorTraining, trainDoorModel } from '../../ml/door/train.js'
import { DoorPredictor } from '../../ml/door/predictor.js'
import { DoorPipeline } from '../../ml/door/pipeline.js'
import {
  buildWindowNovelty, GLOBAL_NOVELTY_MARGIN, GLOBAL_NOVELTY_WINDOW, knnDistances, NOVELTY_STRIDE, swingPairs, transitionMixes, WindowNoveltyModel, type KnnScan
} from '../../ml/novelty.js'
import { trainModel } from '../../ml/global/trainer.js'
import { sessionRows, sessionSlice } from '../fixtures/training.js'
import { RPI_RAW_FRAMES } from '../helper.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const rpiFrames = readFileSync(RPI_RAW_FRAMES, 'utf8').split(/\r?\n/).filter((line) => line.trim() !== '').map((line) => parseFrame(line))
const runOf = (angle: number) => sessionRows().filter((row) => row.angle === angle).map((row) => row.features)

/**
 * The global model's window novelty of the first 150 rows of each angle,
 * through the real scan, counting the windows scanned against the
 * calibration rows (once per scanned window) in `counter.scans`.
 */
function countingNovelty (): { meta: ReturnType<typeof buildWindowNovelty>, model: WindowNoveltyModel, counter: { scans: number } } {
  const slice = sessionSlice(150)
  const meta = buildWindowNovelty(slice.map((r) => r.features), slice.map((r) => r.angle))
  const counter = { scans: 0 }
  const counting: KnnScan = (queries, queryCount, reference, referenceCount, width, neighbours) => {
    if (referenceCount === meta.summary.rows) counter.scans += queryCount
    return knnDistances(queries, queryCount, reference, referenceCount, width, neighbours)
  }
  return { meta, model: new WindowNoveltyModel(meta, counting), counter }
}

test('swing windows: the last j rows of one position and the first k − j of another, for the pairs a door moves between', () => {
  assert.deepEqual(swingPairs([90, 0, 15, 15, 45]), [[0, 15], [0, 45], [0, 90], [15, 90], [45, 90]])
  assert.deepEqual(swingPairs([0, 0]), [])
  assert.deepEqual(transitionMixes(25), [2, 5, 8, 11, 14, 17, 20, 23])
  // rows of width 1 holding their own index: a window's mean tells which rows it took
  const inputs = Array.from({ length: 20 }, (_, i) => [i])
  const labels = [...Array(10).fill(0), ...Array(10).fill(90)]
  const swings = transitionWindows(inputs, labels, inputs.map((_, i) => i).filter((i) => i !== 9), 4, [[0, 90]], [1, 3])
  assert.equal(swings.count, 2)
  // j = 1: row 8 (9 is not among the rows) then rows 10, 11, 12; j = 3: rows 6, 7, 8 then 10
  assert.deepEqual(Array.from(swings.matrix.filter((_, i) => i % 2 === 0)), [(8 + 10 + 11 + 12) / 4, (6 + 7 + 8 + 10) / 4])
  assert.deepEqual(swings.ends, [12, 10])
  assert.throws(() => transitionWindows(inputs, labels, [0, 1, 2, 10, 11, 12], 4, [[0, 90]], [4]), /1\.\.3 rows/)
})

test('the novelty gate: a model is trusted after enter familiar windows; novelAfter novel ones flag it, familiarAfter familiar ones clear it', () => {
  const gate = new NoveltyGate({ enter: 2, novelAfter: 3, familiarAfter: 2 })
  assert.deepEqual([gate.push(false), gate.trusted], [false, false], 'one familiar window is not enough')
  assert.deepEqual([gate.push(false), gate.trusted], [true, true])
  assert.deepEqual(
    [true, true, false, true, true].map((novel) => gate.push(novel)),
    [false, false, false, false, false],
    'a broken run of novel windows raises nothing'
  )
  assert.equal(gate.push(true), true)
  assert.deepEqual([gate.flagged, gate.trusted], [true, false])
  assert.deepEqual([false, true, false].map((novel) => gate.push(novel)), [false, false, false])
  assert.equal(gate.push(false), true)
  assert.deepEqual([gate.flagged, gate.trusted], [false, true])
  gate.resetRuns()
  assert.deepEqual([gate.flagged, gate.trusted], [false, false], 'after silence the trust is earned again')
  assert.throws(() => new NoveltyGate({ enter: 1, novelAfter: 0, familiarAfter: 2 }), /novelAfter/)
})

test('novelAfter must be longer than a window: a swing fills a window with two positions', () => {
  assert.equal(resolveDoorTraining().hysteresis.novelAfter, 50)
  assert.equal(resolveDoorTraining().novelty.margin, 1.5)
  assert.throws(() => resolveDoorTraining({ hysteresis: { novelAfter: 25 } }), /novelAfter must be longer than a window \(25 frames\), got 25/)
  assert.throws(() => resolveDoorTraining({ novelty: { transitions: 'yes' as unknown as boolean } }), /novelty\.transitions must be true or false/)
})

/**
 * Positions a channel tells apart, made from session A: closed as recorded,
 * ajar and open as other runs with their subcarriers permuted (another
 * channel shape each). Session A's own positions look alike, so a swing
 * between them is never novel there.
 */
function separablePositions (): Array<{ angle: number, head: Float32Array[], tail: Float32Array[] }> {
  return [
    { angle: 0, frames: runOf(0) },
    { angle: 15, frames: permuteSubcarriers(runOf(30), 1) },
    { angle: 90, frames: permuteSubcarriers(runOf(90), 3) }
  ].map(({ angle, frames }) => ({ angle, head: frames.slice(0, 300), tail: frames.slice(300) }))
}

/** The reported door after each window of a stream, as the server runs it; and the longest run of novel windows. */
function stream (predictor: DoorPredictor, frames: readonly Float32Array[], novelAfter?: number): { states: string[], longestNovelRun: number } {
  const pipeline = new DoorPipeline(novelAfter === undefined ? predictor.meta : { ...predictor.meta, hysteresis: { ...predictor.meta.hysteresis, novelAfter } })
  const states: string[] = []
  let run = 0
  let longestNovelRun = 0
  frames.forEach((frame, i) => {
    const features = pipeline.push(frame, i)
    if (!features) return
    const [prediction] = predictor.predict([features])
    run = prediction.novel ? run + 1 : 0
    longestNovelRun = Math.max(longestNovelRun, run)
    pipeline.observe(prediction, i)
    const door = pipeline.door
    const state = `${door.state}${door.needsRecalibration ? ' (needs recalibration)' : ''}`
    if (states[states.length - 1] !== state) states.push(state)
  })
  return { states, longestNovelRun }
}

test('a door moving between positions it was calibrated at is familiar: closed → open → closed → ajar → open, no unknown; the previous design went unknown', async () => {
  const positions = separablePositions()
  const input = { frames: positions.flatMap((p) => p.head), angles: positions.flatMap((p) => p.head.map(() => p.angle)) }
  const [closed, ajar, open] = positions.map((p) => p.tail)
  const swing = [...closed.slice(0, 60), ...open.slice(0, 60), ...closed.slice(60), ...ajar.slice(0, 60), ...open.slice(60)]

  const trained = await trainDoorModel(tf, input, { seed: 1, epochs: 10 })
  assert.ok((trained.meta.novelty.transitions?.rows ?? 0) >= 3 * 8, 'swings of each pair are in the summary')
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  const now = stream(predictor, swing)
  // from the first reported state on, only closed and open: never unknown, never needs recalibration
  assert.equal(now.states[0], 'unknown')
  assert.ok(now.states.slice(1).every((state) => state === 'closed' || state === 'open'), now.states.join(' → '))
  assert.deepEqual([now.states[1], now.states[2], now.states[now.states.length - 1]], ['closed', 'open', 'open'], now.states.join(' → '))
  assert.ok(now.longestNovelRun < trained.meta.hysteresis.novelAfter, `longest novel run ${now.longestNovelRun}`)
  // another recording is still novel, the door's own later frames are not
  assert.ok(windowNovelty(predictor, [rpiFrames]).scores.every((score) => score > 1), 'every window of rpi-raw-frames.txt is novel')
  const own = windowNovelty(predictor, [closed, ajar, open]).scores
  assert.equal(own.filter((score) => score > 1).length, 0)
  predictor.dispose()

  // the previous design: no swing windows, margin 1, novelAfter 20 (shorter than a window)
  const before = await trainDoorModel(tf, input, { seed: 1, epochs: 10, novelty: { transitions: false, margin: 1 } })
  const beforePredictor = await DoorPredictor.load(tf, before.artifacts, before.meta)
  const then = stream(beforePredictor, swing, 20)
  assert.ok(then.longestNovelRun >= 20, `a swing was ${then.longestNovelRun} novel windows in a row`)
  assert.ok(then.states.includes('unknown (needs recalibration)'), then.states.join(' → '))
  beforePredictor.dispose()
})

test('the global model carries a window novelty: its own held-out windows are familiar, another recording\'s are not', async () => {
  // a slice of session A: the first 150 rows of each angle
  const slice = sessionSlice(150)
  const trained = await trainModel(tf, { kind: 'csi', features: slice.map((r) => r.features), angles: slice.map((r) => r.angle) }, { seed: 1, epochs: 5 })
  const meta = trained.meta.novelty
  assert.ok(meta, 'a CSI model carries its novelty')
  assert.equal(meta.window, GLOBAL_NOVELTY_WINDOW)
  assert.equal(meta.summary.margin, GLOBAL_NOVELTY_MARGIN)
  const novelty = new WindowNoveltyModel(JSON.parse(JSON.stringify(meta)))
  const score = (frames: readonly Float32Array[]) => Array.from(novelty.stream().push(frames))
  // rows 150..250 of each angle: recorded after everything it learned from
  const later = [0, 15, 30, 45, 60, 75, 90].map((angle) => score(runOf(angle).slice(150, 250)))
  const laterNovel = later.flat().filter((s) => s > 1).length / later.flat().length
  assert.ok(laterNovel < 0.1, `${(laterNovel * 100).toFixed(0)} % of its own later windows flagged`)
  const other = score(rpiFrames)
  assert.equal(other.length, rpiFrames.length - GLOBAL_NOVELTY_WINDOW + 1)
  assert.ok(other.filter((s) => s > 1).length / other.length > 0.9, 'another recording is novel')
  // a stream forgets its window after a reset: no window before k new frames
  const s = novelty.stream()
  assert.equal(s.push(rpiFrames.slice(0, 30)).length, 6)
  s.reset()
  assert.equal(s.push(rpiFrames.slice(0, 24)).length, 0)
  assert.throws(() => new WindowNoveltyModel({ ...meta, format: 'x' as typeof meta.format }), /not a window novelty model/)
  assert.equal(doorFrameFeatures(rpiFrames[0], meta.featureSet).length, DOOR_FRAME_WIDTH)
  assert.throws(() => buildWindowNovelty(slice.slice(0, 20).map((r) => r.features), slice.slice(0, 20).map((r) => r.angle)), /no run of 25 consecutive frames/)
})

test('a stream\'s scans are bounded in time: a flood of frames is scanned at most maxScansPerSecond (after a burst), a Pi at 20 frames/s as often as without a bound', () => {
  const { model, counter } = countingNovelty()
  const frames = Array.from({ length: 1000 }, (_, i) => rpiFrames[i % rpiFrames.length])
  const windows = frames.length - GLOBAL_NOVELTY_WINDOW + 1
  // windows scored: scanned, or decided by the triangle bound (the test below)
  const scansOf = (stream: ReturnType<WindowNoveltyModel['stream']>, batches: Array<{ frames: Float32Array[], at: number }>) => {
    counter.scans = 0
    const bounded = stream.bounded
    const scores = batches.flatMap((batch) => Array.from(stream.push(batch.frames, batch.at)))
    return { scans: counter.scans + stream.bounded - bounded, scores }
  }

  // 1,000 frames at once: unbounded, every 5th window; bounded at 10 a second, the burst (2 s worth) and no more
  const unbounded = scansOf(model.stream(NOVELTY_STRIDE, 0), [{ frames, at: 0 }])
  assert.equal(unbounded.scans, 1 + Math.floor((windows - 1) / NOVELTY_STRIDE))
  const bounded = model.stream(NOVELTY_STRIDE, 10)
  const flood = scansOf(bounded, [{ frames, at: 0 }])
  assert.equal(flood.scans, 20)
  assert.equal(flood.scores.length, windows, 'every window still has a score (the last one scanned)')
  // a second later, 10 more scans to spare, however many frames come
  assert.equal(scansOf(bounded, [{ frames, at: 1000 }]).scans, 10)

  // a Pi at 20 frames/s in batches of 20: 4 scans a second, under the bound: the same scans and scores as without one
  const paced = Array.from({ length: 20 }, (_, k) => ({ frames: frames.slice(k * 20, (k + 1) * 20), at: k * 1000 }))
  const free = scansOf(model.stream(NOVELTY_STRIDE, 0), paced)
  const capped = scansOf(model.stream(NOVELTY_STRIDE, 10), paced)
  assert.equal(capped.scans, free.scans)
  assert.deepEqual(capped.scores, free.scores)
  assert.throws(() => model.stream(NOVELTY_STRIDE, -1), /scans per second must be 0 or more/)
})

test('a window near a novel one is novel without a scan (the triangle bound): the verdicts of every window are the scan\'s, familiar scores exact', () => {
  const { meta, model, counter } = countingNovelty()
  // another room, then the door's own room (later frames of two angles), then another room again
  const familiar = [0, 90].flatMap((angle) => runOf(angle).slice(150, 300))
  const frames = [...rpiFrames, ...familiar, ...rpiFrames]

  // the scan's verdict for every window the stream scores (the first, then every 5th), repeated between: scored one by one
  const window = new FrameWindow(meta.window, DOOR_FRAME_WIDTH)
  const row = new Float64Array(DOOR_FRAME_WIDTH)
  const reference: number[] = []
  let since = 0
  for (const frame of frames) {
    doorFrameFeaturesInto(frame, meta.featureSet, row)
    window.push(row)
    if (!window.ready) continue
    if (window.pushed === meta.window || ++since >= NOVELTY_STRIDE) {
      since = 0
      reference.push(model.score([window.features()])[0])
    } else reference.push(reference[reference.length - 1])
  }
  const referenceScans = counter.scans

  counter.scans = 0
  const stream = model.stream(NOVELTY_STRIDE, 0)
  const scores = Array.from(stream.push(frames))
  assert.equal(scores.length, reference.length)
  scores.forEach((score, i) => {
    assert.equal(score > 1, reference[i] > 1, `window ${i}: ${score} against the scan's ${reference[i]}`)
    // a familiar window is scanned; a bounded one reports a lower bound of its scan's score
    if (reference[i] <= 1) assert.equal(score, reference[i], `window ${i}`)
    else assert.ok(score <= reference[i] + 1e-9, `window ${i}: the bound ${score} is not above the scan's ${reference[i]}`)
  })
  const novel = reference.filter((score) => score > 1).length
  assert.ok(novel > 0 && novel < reference.length, 'both kinds of window')
  // most of another room's windows (two passes of the recording, scored every 5th)
  assert.ok(stream.bounded > 0.5 * 2 * rpiFrames.length / NOVELTY_STRIDE, `${stream.bounded} windows decided by the bound`)
  assert.equal(counter.scans + stream.bounded, referenceScans, 'each bounded window is a scan saved')
})
