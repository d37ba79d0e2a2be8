import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FEATURE_SETS, extractFeatures, featureCount, inputMatrix, inputWidth, wrapPhase } from '../../domain/features.js'
import { FEATURES } from '../../domain/frames.js'
import { SESSION_A_CSV } from '../helper.js'

const lines = readFileSync(SESSION_A_CSV, 'utf8').split('\n').filter((line) => line.trim() !== '')
const header = lines[0].split(',')
/** A session-A row as column name → value, read without the project's parser. */
function sessionRow (n: number): { frame: number[], cell: (name: string) => number } {
  const cells = lines[n].split(',').map(Number)
  return { frame: cells.slice(1), cell: (name) => cells[header.indexOf(name)] }
}

/** The difference of two phases wrapped by hand: add or subtract one turn until it lies in [-π, π]. */
function handWrapped (difference: number): number {
  let d = difference
  while (d > Math.PI) d -= 2 * Math.PI
  while (d < -Math.PI) d += 2 * Math.PI
  return d
}

test('feature counts: raw keeps all 106, the engineered sets drop CH32', () => {
  assert.equal(featureCount('raw'), 106)
  assert.equal(featureCount('magnitudes'), 52)
  assert.equal(featureCount('magnitudes+phase-diff'), 52 + 51)
  assert.equal(inputWidth('rssi', 'raw'), 1)
  assert.deepEqual(FEATURE_SETS.map((set) => extractFeatures(sessionRow(1).frame, set).length), FEATURE_SETS.map(featureCount))
})

test('wrapPhase brings angles back to [-π, π]', () => {
  assert.ok(Math.abs(wrapPhase(1.5 * Math.PI) - -0.5 * Math.PI) < 1e-12)
  assert.ok(Math.abs(wrapPhase(-1.5 * Math.PI) - 0.5 * Math.PI) < 1e-12)
  assert.ok(Math.abs(wrapPhase(0.25) - 0.25) < 1e-12)
  assert.ok(Math.abs(wrapPhase(3.0 - -3.0) - (6.0 - 2 * Math.PI)) < 1e-12)
})

test('magnitudes + phase differences of a real row, checked by column name', () => {
  // find a row where some neighbouring phases jump across ±π, so the wrap is exercised
  let n = 1
  const jumps = (row: ReturnType<typeof sessionRow>) => Array.from({ length: 52 }, (_, k) => k + 6)
    .some((ch) => ch !== 31 && ch !== 32 && Math.abs(row.cell(`CH${ch + 1}_phase`) - row.cell(`CH${ch}_phase`)) > Math.PI)
  while (!jumps(sessionRow(n))) n++
  const row = sessionRow(n)
  const features = extractFeatures(row.frame, 'magnitudes+phase-diff')
  const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-5, `${what}: ${actual} vs ${expected}`)

  close(features[0], row.cell('CH6_mag'), 'first magnitude')
  close(features[25], row.cell('CH31_mag'), 'magnitude before the DC null')
  close(features[26], row.cell('CH33_mag'), 'magnitude after the DC null (CH32 skipped)')
  close(features[51], row.cell('CH58_mag'), 'last magnitude')
  close(features[52], handWrapped(row.cell('CH7_phase') - row.cell('CH6_phase')), 'CH7 − CH6')
  close(features[52 + 25], handWrapped(row.cell('CH33_phase') - row.cell('CH31_phase')), 'CH33 − CH31 across the null')
  close(features[102], handWrapped(row.cell('CH58_phase') - row.cell('CH57_phase')), 'CH58 − CH57')
  for (let i = 52; i < 103; i++) assert.ok(Math.abs(features[i]) <= Math.PI + 1e-6, `difference ${i} is wrapped`)

  assert.deepEqual(Array.from(extractFeatures(row.frame, 'magnitudes')), Array.from(features.subarray(0, 52)))
  assert.deepEqual(Array.from(extractFeatures(row.frame, 'raw')), Array.from(Float32Array.from(row.frame)))
})

test('phase differences cancel a per-packet phase offset; raw phases do not', () => {
  const { frame } = sessionRow(200)
  // the same packet with every phase turned by 1.3 rad (a random oscillator offset), wrapped back to [-π, π]
  const turned = frame.map((value, i) => i < 53 || i === 53 + 26 ? value : wrapPhase(value + 1.3))
  const before = extractFeatures(frame, 'magnitudes+phase-diff')
  const after = extractFeatures(turned, 'magnitudes+phase-diff')
  for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i] - after[i]) < 1e-5, `feature ${i} moved: ${before[i]} → ${after[i]}`)
  const rawBefore = extractFeatures(frame, 'raw')
  const rawAfter = extractFeatures(turned, 'raw')
  assert.ok(Math.abs(rawBefore[53] - rawAfter[53]) > 0.1, 'a raw phase moves with the offset')
})

test('inputMatrix stacks chosen rows and names a frame of the wrong length', () => {
  const frames = [sessionRow(1).frame, sessionRow(2).frame, sessionRow(3).frame]
  const { matrix, width, rows } = inputMatrix('csi', 'magnitudes', frames, [2, 0])
  assert.equal(width, 52)
  assert.equal(rows, 2)
  assert.deepEqual(Array.from(matrix.subarray(0, 52)), Array.from(extractFeatures(frames[2], 'magnitudes')))
  assert.deepEqual(Array.from(matrix.subarray(52)), Array.from(extractFeatures(frames[0], 'magnitudes')))
  assert.throws(() => inputMatrix('csi', 'raw', [frames[0], frames[1].slice(0, 52)]), /frame 1: a CSI frame must hold 106 values.*got 52/)
  assert.deepEqual(Array.from(inputMatrix('rssi', 'raw', [[-61], [-70]]).matrix), [-61, -70])
  assert.throws(() => inputMatrix('rssi', 'raw', [[-61, 3]]), /frame 0: an RSSI reading must be 1 value, got 2/)
  assert.equal(FEATURES, 106)
})
