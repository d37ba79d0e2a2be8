import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DOOR_FRAME_WIDTH, doorFrameFeatures, FrameWindow, runWindows } from '../../domain/door-window.js'
import { extractFeatures } from '../../domain/features.js'

const close = (actual: number, expected: number, tolerance: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`)
}

test('a 3-frame window gives the hand-computed mean then std of each column', () => {
  const window = new FrameWindow(3, 2)
  window.push([1, 10])
  window.push([2, 20])
  assert.equal(window.ready, false)
  assert.throws(() => window.features(), /holds 2 of 3 rows/)
  window.push([4, 60])
  assert.equal(window.ready, true)
  const f = window.features()
  assert.ok(f instanceof Float32Array)
  assert.equal(f.length, 4)
  // col 0: 1, 2, 4 → mean 7/3, population variance (16/9 + 1/9 + 25/9) / 3 = 14/9
  close(f[0], 7 / 3, 1e-6, 'mean 0')
  close(f[1], 30, 1e-5, 'mean 1')
  close(f[2], Math.sqrt(14 / 9), 1e-6, 'std 0')
  // col 1: 10, 20, 60 → mean 30, variance (400 + 100 + 900) / 3
  close(f[3], Math.sqrt(1400 / 3), 1e-4, 'std 1')

  // the oldest row leaves: 2, 4, 0 and 20, 60, 0
  window.push([0, 0])
  const g = window.features(new Float64Array(4))
  close(g[0], 2, 1e-12, 'mean 0 after slide')
  close(g[1], 80 / 3, 1e-12, 'mean 1 after slide')
  close(g[2], Math.sqrt(8 / 3), 1e-12, 'std 0 after slide')
  close(g[3], Math.sqrt((20 ** 2 + 60 ** 2) / 3 - (80 / 3) ** 2), 1e-9, 'std 1 after slide')
})

test('running sums match an exact recomputation after many pushes, with large offsets', () => {
  const k = 25
  const width = 4
  const window = new FrameWindow(k, width)
  const history: number[][] = []
  let seed = 7
  const random = (): number => {
    seed = (seed * 16807) % 2147483647
    return seed / 2147483647
  }
  // column 0: large mean, tiny spread (the cancellation case); column 3 constant
  const row = (): number[] => [1e5 + random() * 1e-2, random() * 40, (random() - 0.5) * 2 * Math.PI, 12.5]
  for (let i = 0; i < 100_003; i++) {
    const r = row()
    history.push(r)
    if (history.length > k) history.shift()
    window.push(r)
  }
  const f = window.features(new Float64Array(2 * width))
  for (let c = 0; c < width; c++) {
    const values = history.map((r) => r[c])
    const m = values.reduce((a, b) => a + b, 0) / k
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / k)
    close(f[c], m, 1e-9 * Math.max(1, Math.abs(m)), `mean ${c}`)
    close(f[width + c], sd, 1e-8, `std ${c}`)
  }
  assert.equal(f[width + 3], 0, 'a constant column has std exactly 0, never NaN from a negative variance')
})

test('reset forgets the rows and a wrong row length is refused', () => {
  const window = new FrameWindow(2, 3)
  window.push([1, 2, 3])
  window.push([3, 4, 5])
  assert.equal(window.ready, true)
  window.reset()
  assert.equal(window.ready, false)
  assert.equal(window.count, 0)
  assert.throws(() => window.push([1, 2]), /must hold 3 values/)
  assert.throws(() => new FrameWindow(1, 3), /window size/)
})

test('training windows come only from contiguous runs of one label, with a stride', () => {
  // runs: 0° × 30, 15° × 12, 0° × 8 (shorter than k: no window), 30° × 20
  const labels = [...Array(30).fill(0), ...Array(12).fill(15), ...Array(8).fill(0), ...Array(20).fill(30)]
  const inputs = labels.map((label, i) => [label, i])
  const k = 10
  const all = runWindows(inputs, labels, { size: k })
  assert.equal(all.count, (30 - k + 1) + (12 - k + 1) + 0 + (20 - k + 1))
  assert.equal(all.width, 4)
  all.ends.forEach((end, w) => {
    for (let i = end - k + 1; i <= end; i++) assert.equal(labels[i], all.labels[w], `window ending at ${end} crosses a label change at ${i}`)
    // the window's mean of column 1 (the row index) says which rows it holds
    close(all.matrix[w * all.width + 1], end - (k - 1) / 2, 1e-4, `window ${w} rows`)
  })
  const strided = runWindows(inputs, labels, { size: k, stride: 5 })
  assert.deepEqual(strided.ends, [9, 14, 19, 24, 29, 39, 59, 64, 69])

  // listed rows with a gap: the gap ends the run
  const rows = [...Array.from({ length: 15 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => 18 + i)]
  const gapped = runWindows(inputs, labels, { size: k, rows })
  assert.deepEqual(gapped.ends, [9, 10, 11, 12, 13, 14, 27, 28, 29])
})

test('frame features: the phase differences are features.ts\'s, centred log-magnitudes sum to 0', () => {
  const frame = Float32Array.from({ length: 106 }, (_, i) => i < 53 ? (i === 26 ? 0 : 10 + (i % 7)) : ((i * 0.37) % 6) - 3)
  const reference = extractFeatures(frame, 'magnitudes+phase-diff')
  const plain = doorFrameFeatures(frame, 'magnitudes+phase-diff')
  assert.equal(plain.length, DOOR_FRAME_WIDTH)
  assert.deepEqual(plain, reference)
  const centred = doorFrameFeatures(frame, 'centred-log-magnitudes+phase-diff')
  close(centred.subarray(0, 52).reduce((a, b) => a + b, 0), 0, 1e-4, 'sum of centred log-magnitudes')
  for (let i = 52; i < DOOR_FRAME_WIDTH; i++) close(centred[i], reference[i], 1e-6, `phase difference ${i}`)
  const log = doorFrameFeatures(frame, 'log-magnitudes+phase-diff')
  close(log[0], Math.log1p(frame[0]), 1e-6, 'log-magnitude')
  assert.throws(() => doorFrameFeatures(new Float32Array(104), 'magnitudes+phase-diff'), /must hold 106 values/)
})
