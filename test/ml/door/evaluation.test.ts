import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { Value } from '@sinclair/typebox/value'
import { readFileSync } from 'node:fs'
import { parseFrame } from '../../../domain/frames.js'
import { readSessionCsv } from '../../../domain/session-csv.js'
import {
  blockedTails, contiguousRuns, evaluateDoorModel, permuteSubcarriers, readingsByAngle, toEvaluation, type DoorEvaluation
} from '../../../ml/door/evaluation.js'
import { Evaluation } from '../../../schemas/model.js'
import { DEFAULT_DOOR_TRAINING } from '../../../ml/door/train.js'

const SESSION_A = new URL('../../fixtures/csi/door-angles-session-a.csv', import.meta.url)
const RPI_RAW = new URL('../../fixtures/csi/rpi-raw-frames.txt', import.meta.url)

await tf.setBackend('cpu')
tf.enableProdMode()

const rows = readSessionCsv(readFileSync(SESSION_A, 'utf8')).rows
const session = { frames: rows.map((row) => row.features), angles: rows.map((row) => row.angle) }
const rpiFrames = readFileSync(RPI_RAW, 'utf8').split(/\r?\n/).filter((line) => line.trim() !== '').map((line) => parseFrame(line))

test('blocked tails: one per angle, the last 20 % of its rows, never in the training input', () => {
  const { train, tails } = blockedTails(session, 0.2)
  assert.equal(tails.length, 7)
  assert.equal(train.frames.length + tails.reduce((n, tail) => n + tail.frames.length, 0), session.frames.length)
  const trainSet = new Set(train.frames)
  for (const tail of tails) for (const frame of tail.frames) assert.ok(!trainSet.has(frame))
  assert.deepEqual(contiguousRuns([1, 2, 3, 7, 8], [0, 0, 0, 0, 0, 0, 0, 0, 0]), [[1, 2, 3], [7, 8]])
})

test('session A, blocked split, replayed as the server runs it: the issue\'s floors hold', async () => {
  const started = performance.now()
  const { train, tails } = blockedTails(session, 0.2)
  const shifted = [
    { name: 'rpi-raw-frames', runs: [rpiFrames] },
    { name: 'permuted subcarriers', runs: tails.map((tail) => permuteSubcarriers(tail.frames)) }
  ]
  assert.ok(train.frames.length > 0)
  const { evaluation } = await evaluateDoorModel(tf, session, { seed: 1 }, { shifted })
  const seconds = (performance.now() - started) / 1000
  const e: DoorEvaluation = evaluation
  const d = e.doorState
  const say = `door ${d.accuracy.toFixed(3)}, balanced ${d.openClosed.balancedAccuracy.toFixed(3)}, closed F1 ${d.openClosed.closedF1.toFixed(3)}; ` +
    `per window ${e.accuracy.toFixed(3)} / ${e.openClosed.balancedAccuracy.toFixed(3)} (${seconds.toFixed(1)} s)`
  assert.ok(d.accuracy >= 0.5, `doorState.accuracy below .50: ${say}`)
  assert.ok(d.openClosed.balancedAccuracy >= 0.65, `doorState.openClosed.balancedAccuracy below .65: ${say}`)
  assert.equal(d.window, DEFAULT_DOOR_TRAINING.window)
  assert.ok(d.window <= 25)
  assert.ok(
    d.latencyFrames >= d.window - 1 + DEFAULT_DOOR_TRAINING.hysteresis.enter && d.latencyFrames <= 25 + DEFAULT_DOOR_TRAINING.hysteresis.enter,
    `latencyFrames ${d.latencyFrames}`
  )
  assert.equal(e.tails, 7)
  assert.equal(e.testFrames, 570)
  assert.ok(d.frames <= e.testFrames - 7 * (d.window - 1 + DEFAULT_DOOR_TRAINING.hysteresis.enter - 1))
  // per-window figures exist and are better than "always open"
  assert.ok(e.openClosed.balancedAccuracy > 0.6, say)
  assert.ok(e.openClosed.closedF1 > 0.3, say)
  // novelty: another recording and permuted subcarriers are told apart from the held-out windows
  assert.ok(e.novelty, 'novelty figures')
  assert.ok(e.novelty.auc > 0.9, `novelty.auc ${e.novelty.auc}`)
  for (const set of e.novelty.sets) assert.ok(set.auc > 0.9, `${set.name}: AUC ${set.auc}`)
  assert.ok(e.novelty.heldOutNovelShare < 0.2, `held-out windows flagged novel: ${e.novelty.heldOutNovelShare}`)
  assert.ok(d.unknownFrames < 0.1 * d.frames, `${d.unknownFrames} of ${d.frames} counted frames unknown`)
  assert.ok(JSON.parse(JSON.stringify(e)), 'JSON-serialisable')

  // the 7-class view over the counted windows, and the 2 × 3 door-state confusion
  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0)
  assert.deepEqual(e.labels, [0, 15, 30, 45, 60, 75, 90])
  assert.equal(e.confusion.length, 7)
  assert.equal(sum(e.confusion.flat()), e.testWindows)
  assert.ok(Math.abs(sum(e.confusion.map((row, i) => row[i])) / e.testWindows - e.accuracy) < 1e-12, 'accuracy = trace / windows')
  assert.deepEqual(e.perClass.map((c) => c.label), e.labels)
  assert.deepEqual(e.perClass.map((c) => c.support), e.confusion.map(sum))
  assert.equal(e.testRows, e.testWindows)
  assert.equal(e.trainRows, e.trainFrames)
  assert.equal(e.testWindows, e.testFrames - 7 * (d.window - 1))
  const [closedRow, openRow] = d.confusion
  assert.equal(sum(d.confusion.flat()), d.frames)
  assert.equal(closedRow[2] + openRow[2], d.unknownFrames)
  const closedRecall = closedRow[0] / sum(closedRow)
  const openRecall = openRow[1] / sum(openRow)
  assert.ok(Math.abs((closedRecall + openRecall) / 2 - d.openClosed.balancedAccuracy) < 1e-12, 'balanced accuracy from the confusion')
  assert.ok(Math.abs((closedRow[0] + openRow[1]) / d.frames - d.openClosed.accuracy) < 1e-12, 'open/closed accuracy from the confusion')

  // the schema's Evaluation, as GET /training/get/evaluation serves a door version's
  const served = toEvaluation(JSON.parse(JSON.stringify(e)) as DoorEvaluation)
  assert.ok(Value.Check(Evaluation, served), [...Value.Errors(Evaluation, served)].map((err) => `${err.path}: ${err.message}`).join('; '))
  assert.equal(served.accuracy, e.accuracy)
  assert.deepEqual(served.openClosed, { ...e.openClosed, f1: e.openClosed.closedF1 })
  assert.deepEqual(served.doorState, {
    accuracy: d.accuracy,
    openClosed: d.openClosed,
    window: d.window,
    latencyFrames: d.latencyFrames,
    confusion: d.confusion
  })
  assert.deepEqual(served.novelty, { auc: e.novelty.auc })
  assert.deepEqual(Object.keys(served).sort(), ['accuracy', 'confusion', 'doorState', 'labels', 'novelty', 'openClosed', 'perClass', 'testRows', 'trainRows'])
  assert.equal(toEvaluation({ ...e, novelty: undefined }).novelty, undefined)
  assert.throws(() => toEvaluation({ ...e, confusion: undefined } as unknown as DoorEvaluation), /no confusion figures .*calibrate the door again/)
})

test('the door state of each calibrated angle is counted: closed, open and unknown per angle add up to the confusion', async () => {
  const { evaluation: e } = await evaluateDoorModel(tf, session, { seed: 3, epochs: 5 })
  const perAngle = e.doorState.perAngle ?? []
  assert.deepEqual(perAngle.map((r) => r.angle), [0, 15, 30, 45, 60, 75, 90])
  for (const r of perAngle) assert.equal(r.closed + r.open + r.unknown, r.frames)
  const [closedRow, openRow] = e.doorState.confusion
  const closed = perAngle.filter((r) => r.angle === 0)
  const open = perAngle.filter((r) => r.angle !== 0)
  assert.deepEqual(closedRow, [closed[0].closed, closed[0].open, closed[0].unknown])
  assert.deepEqual(openRow, [open.reduce((n, r) => n + r.closed, 0), open.reduce((n, r) => n + r.open, 0), open.reduce((n, r) => n + r.unknown, 0)])
  assert.deepEqual(
    readingsByAngle([
      { angle: 15, state: 'closed', reportedAngle: 0 },
      { angle: 0, state: 'unknown', reportedAngle: null },
      { angle: 15, state: 'open', reportedAngle: 30 }
    ]),
    [{ angle: 0, frames: 1, closed: 0, open: 0, unknown: 1 }, { angle: 15, frames: 2, closed: 1, open: 1, unknown: 0 }]
  )
})
