/**
 * The novelty's kNN scan (ml/novelty.ts knnDistances) sums four reference
 * rows at a time for speed; it must answer bit for bit what the row-by-row
 * scan it replaced answered (test/fixtures/knn-reference.ts), on real
 * windows, for every remainder of rows and every neighbour count. And a
 * summary keeps at most MAX_TRANSITION_ROWS swing rows, the bound of a novel
 * window's scan.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { standardiseCopy, buildWindowNovelty, knnDistances, MAX_TRANSITION_ROWS, swingPairs, transitionMixes } from '../../ml/novelty.js'
import { byAngle, calibratedModel, rpiFrames, windowsOf } from '../fixtures/door-model.js'
import { knnDistancesRowByRow } from '../fixtures/knn-reference.js'
import { sessionRows } from '../fixtures/training.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const { meta } = await calibratedModel()
const width = meta.inputSize
const stored = Buffer.from(meta.novelty.float32Base64, 'base64')
/** The summary's rows as the predictor reads them: the calibration windows, then the swings. */
const summary = new Float32Array(stored.buffer.slice(stored.byteOffset, stored.byteOffset + stored.byteLength))
const summaryRows = summary.length / width
const standardise = (windows: readonly Float32Array[]) => {
  const matrix = new Float32Array(windows.length * width)
  windows.forEach((window, r) => matrix.set(window, r * width))
  return standardiseCopy(matrix, meta.standardisation)
}
// windows the model never saw (each angle's frames after its calibration) and another room's
const familiar = standardise([...byAngle.values()].flatMap((frames) => windowsOf(meta, frames.slice(100, 160))))
const novel = standardise(windowsOf(meta, rpiFrames.slice(0, 100)))

function assertSame (queries: Float32Array, reference: Float32Array, rows: number, neighbours: number): void {
  const count = queries.length / width
  const expected = knnDistancesRowByRow(queries, count, reference, rows, width, neighbours)
  const got = knnDistances(queries, count, reference, rows, width, neighbours)
  for (let q = 0; q < count; q++) {
    // Object.is: the same bits (a rounding of any sum would show)
    assert.ok(Object.is(got[q], expected[q]), `${rows} rows, ${neighbours}-NN, query ${q}: ${got[q]} vs ${expected[q]}`)
  }
}

test('the four-row kNN scan answers the row-by-row scan bit for bit: a door model\'s summary and swings, familiar and novel windows', () => {
  assert.ok(summaryRows > meta.novelty.rows, 'the model carries swing rows')
  assert.ok(familiar.length / width > 200 && novel.length / width > 70)
  for (const queries of [familiar, novel]) {
    // every remainder of rows modulo 4, small and whole summaries, the neighbour counts in use
    for (const rows of [1, 2, 3, 4, 5, 6, 7, 9, 63, meta.novelty.rows, summaryRows]) {
      for (const neighbours of [1, 2, 5]) {
        if (neighbours <= rows) assertSame(queries, summary, rows, neighbours)
      }
    }
    // the swings alone, as the scorer scans them for a novel window
    const swings = summary.subarray(meta.novelty.rows * width)
    assertSame(queries, swings, swings.length / width, meta.novelty.transitions?.neighbours ?? 2)
  }
})

test('the four-row kNN scan on ties: queries that are reference rows, and repeated reference rows', () => {
  const rows = 10
  const reference = new Float32Array(rows * width)
  // rows 0..4 and 5..9 are the same five windows
  for (let r = 0; r < rows; r++) reference.set(familiar.subarray((r % 5) * 37 * width, ((r % 5) * 37 + 1) * width), r * width)
  const queries = new Float32Array([...reference.subarray(0, 3 * width), ...novel.subarray(0, 2 * width)])
  for (const neighbours of [1, 2, 3, 5, 10]) assertSame(queries, reference, rows, neighbours)
  const distances = knnDistances(queries, 5, reference, rows, width, 2)
  assert.equal(distances[0], 0, 'a query that is a reference row (twice over) is at distance 0 from its two nearest')
})

test('a summary keeps at most MAX_TRANSITION_ROWS swing rows, evenly spaced; a calibration of up to nine positions keeps them all', () => {
  const rows = sessionRows()
  // session A's seven angles: 8 × (2 × 7 − 3) = 88 swings, under the cap
  const seven = buildWindowNovelty(rows.map((row) => row.features), rows.map((row) => row.angle))
  assert.equal(seven.summary.transitions?.rows, transitionMixes(25).length * swingPairs(rows.map((row) => row.angle)).length)
  assert.equal(seven.summary.transitions?.rows, 88)
  // the same frames as fourteen positions (each angle's run halved): 8 × 25 = 200 swings, capped
  const counts = new Map<number, number>()
  for (const row of rows) counts.set(row.angle, (counts.get(row.angle) ?? 0) + 1)
  const seen = new Map<number, number>()
  const halved = rows.map((row) => {
    const index = seen.get(row.angle) ?? 0
    seen.set(row.angle, index + 1)
    return row.angle * 2 + (index < (counts.get(row.angle) as number) / 2 ? 0 : 1)
  })
  assert.equal(transitionMixes(25).length * swingPairs(halved).length, 200)
  const fourteen = buildWindowNovelty(rows.map((row) => row.features), halved)
  assert.equal(fourteen.summary.transitions?.rows, MAX_TRANSITION_ROWS)
  const stored = Buffer.from(fourteen.summary.float32Base64, 'base64')
  assert.equal(stored.byteLength, (fourteen.summary.rows + MAX_TRANSITION_ROWS) * fourteen.summary.width * 4)
  assert.ok(fourteen.summary.transitions.threshold > 0)
})
