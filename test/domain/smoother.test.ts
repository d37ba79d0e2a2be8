import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DoorSmoother, scoreSmoothed, sequencesByLabel, smoothedAccuracy, DEFAULT_SMOOTHER_OPTIONS } from '../../domain/smoother.js'

const LABELS = [0, 15, 30, 45]
/** Probabilities that put `weight` on the class of `angle` and share the rest. */
function evidence (angle: number, weight = 0.7): number[] {
  const rest = (1 - weight) / (LABELS.length - 1)
  return LABELS.map((label) => label === angle ? weight : rest)
}

test('stays unknown until the evidence held for `hold` frames, then reports it', () => {
  const smoother = new DoorSmoother({ window: 1, hold: 3 }, 100)
  assert.equal(smoother.door.state, 'unknown')
  assert.equal(smoother.push(evidence(0), LABELS, 101), false)
  assert.equal(smoother.push(evidence(0), LABELS, 102), false)
  assert.equal(smoother.door.state, 'unknown')
  assert.equal(smoother.door.angle, null)
  assert.equal(smoother.push(evidence(0), LABELS, 103), true)
  const { confidence, ...rest } = smoother.door
  assert.deepEqual(rest, { angle: 0, state: 'closed', since: 103, lastFrameAt: 103 })
  assert.ok(Math.abs(confidence - evidence(0)[0]) < 1e-12)
})

test('hysteresis: a flickering candidate never moves the state; a held one does, after exactly `hold` frames', () => {
  const smoother = new DoorSmoother({ window: 1, hold: 3 })
  for (let t = 0; t < 3; t++) smoother.push(evidence(0), LABELS, t)
  assert.equal(smoother.door.state, 'closed')
  // open, open, closed, open, open, closed …: never three in a row
  for (let t = 3; t < 30; t++) {
    assert.equal(smoother.push(evidence(t % 3 === 2 ? 0 : 30), LABELS, t), false)
    assert.equal(smoother.door.state, 'closed')
  }
  assert.equal(smoother.push(evidence(30), LABELS, 30), false)
  assert.equal(smoother.push(evidence(30), LABELS, 31), false)
  assert.equal(smoother.push(evidence(30), LABELS, 32), true)
  assert.equal(smoother.door.state, 'open')
  assert.equal(smoother.door.angle, 30)
  assert.equal(smoother.door.since, 32)
})

test('open candidates that disagree on the angle still open the door', () => {
  const smoother = new DoorSmoother({ window: 1, hold: 2 })
  smoother.push(evidence(0), LABELS, 0)
  smoother.push(evidence(0), LABELS, 1)
  assert.equal(smoother.door.state, 'closed')
  smoother.push(evidence(15), LABELS, 2)
  assert.equal(smoother.push(evidence(45), LABELS, 3), true)
  assert.equal(smoother.door.state, 'open')
  assert.equal(smoother.door.angle, 45)
})

test('within a state the angle moves only after the new angle held for `hold` frames; `since` stays', () => {
  const smoother = new DoorSmoother({ window: 1, hold: 2 })
  smoother.push(evidence(15), LABELS, 0)
  smoother.push(evidence(15), LABELS, 1)
  assert.equal(smoother.door.angle, 15)
  assert.equal(smoother.push(evidence(45), LABELS, 2), false)
  assert.equal(smoother.push(evidence(30), LABELS, 3), false)
  assert.equal(smoother.push(evidence(45), LABELS, 4), false)
  assert.equal(smoother.door.angle, 15)
  assert.equal(smoother.push(evidence(45), LABELS, 5), true)
  assert.equal(smoother.door.angle, 45)
  assert.equal(smoother.door.state, 'open')
  assert.equal(smoother.door.since, 1, 'an angle change within "open" is not a state change')
})

test('the window averages: one confident outlier among weak frames does not become the candidate', () => {
  const smoother = new DoorSmoother({ window: 5, hold: 1 })
  for (let t = 0; t < 5; t++) smoother.push(evidence(30, 0.6), LABELS, t)
  assert.equal(smoother.door.angle, 30)
  // with hold 1 a plain per-frame reading would switch here
  assert.equal(smoother.push(evidence(0, 0.95), LABELS, 5), false)
  assert.equal(smoother.door.angle, 30)
  // once the window is dominated by the new evidence it does switch
  let switched = false
  for (let t = 6; t < 12 && !switched; t++) switched = smoother.push(evidence(0, 0.95), LABELS, t)
  assert.equal(switched, true)
  assert.equal(smoother.door.state, 'closed')
})

test('confidence is the smoothed probability of the reported state', () => {
  const smoother = new DoorSmoother({ window: 2, hold: 1 })
  smoother.push([0.1, 0.6, 0.2, 0.1], LABELS, 0)
  smoother.push([0.3, 0.4, 0.2, 0.1], LABELS, 1)
  assert.equal(smoother.door.state, 'open')
  assert.ok(Math.abs(smoother.door.confidence - (1 - (0.1 + 0.3) / 2)) < 1e-12)
})

test('silence: expire() turns a known door unknown once, forgets the window, and the door needs `hold` frames again', () => {
  const smoother = new DoorSmoother({ window: 3, hold: 2 })
  smoother.push(evidence(0), LABELS, 1000)
  smoother.push(evidence(0), LABELS, 1100)
  assert.equal(smoother.door.state, 'closed')
  assert.equal(smoother.expire(1500, 1000), false, 'not silent long enough')
  assert.equal(smoother.door.state, 'closed')
  assert.equal(smoother.expire(2100, 1000), true)
  assert.deepEqual(smoother.door, { angle: null, state: 'unknown', confidence: 0, since: 2100, lastFrameAt: 1100 })
  assert.equal(smoother.expire(5000, 1000), false, 'already unknown')
  // the old closed frames are gone: open evidence wins within `hold` frames
  assert.equal(smoother.push(evidence(45), LABELS, 6000), false)
  assert.equal(smoother.push(evidence(45), LABELS, 6001), true)
  assert.equal(smoother.door.state, 'open')
})

test('a new label set (another model) restarts the window', () => {
  const smoother = new DoorSmoother({ window: 10, hold: 1 })
  for (let t = 0; t < 10; t++) smoother.push(evidence(0, 0.9), LABELS, t)
  assert.equal(smoother.door.state, 'closed')
  const otherLabels = [0, 90]
  assert.equal(smoother.push([0.2, 0.8], otherLabels, 10), true, 'ten closed frames of the old model would outweigh one frame')
  assert.equal(smoother.door.angle, 90)
  assert.throws(() => smoother.push([0.5, 0.5, 0], otherLabels, 11), /expected 2 probabilities/)
})

test('rejects a window or hold below 1', () => {
  assert.throws(() => new DoorSmoother({ window: 0, hold: 1 }), /window/)
  assert.throws(() => new DoorSmoother({ window: 3, hold: 0.5 }), /hold/)
})

test('the running sum does not drift over many laps of the window', () => {
  const smoother = new DoorSmoother({ window: 3, hold: 1 })
  let seed = 7
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  for (let t = 0; t < 100_000; t++) {
    const raw = LABELS.map(() => random())
    const sum = raw.reduce((a, b) => a + b, 0)
    smoother.push(raw.map((value) => value / sum), LABELS, t)
  }
  // three frames of pure 15°: the window holds nothing else, so the confidence is exactly 1 (no residue)
  for (let t = 0; t < 3; t++) smoother.push([0, 1, 0, 0], LABELS, 100_000 + t)
  assert.equal(smoother.door.angle, 15)
  assert.ok(Math.abs(smoother.door.confidence - 1) < 1e-9)
})

test('sequencesByLabel keeps each label\'s rows in order', () => {
  const rows = [[1], [2], [3], [4], [5]]
  const sequences = sequencesByLabel([0, 15, 0, 15, 0], rows)
  assert.deepEqual(sequences.map((s) => s.angle), [0, 15])
  assert.deepEqual(sequences[0].probabilities, [[1], [3], [5]])
  assert.deepEqual(sequences[1].probabilities, [[2], [4]])
  assert.throws(() => sequencesByLabel([0], []), /1 angles but 0/)
})

test('smoothedAccuracy beats per-frame accuracy on noisy streams and counts undecided frames as wrong', () => {
  // noisy per-frame predictions: the true class is the argmax 55 % of the time
  let seed = 42
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  const angles: number[] = []
  const probabilities: number[][] = []
  for (const angle of LABELS) {
    for (let i = 0; i < 80; i++) {
      const row = LABELS.map(() => random())
      row[LABELS.indexOf(angle)] += 0.45
      const sum = row.reduce((a, b) => a + b, 0)
      angles.push(angle)
      probabilities.push(row.map((value) => value / sum))
    }
  }
  const perFrame = angles.filter((angle, i) => LABELS[probabilities[i].indexOf(Math.max(...probabilities[i]))] === angle).length / angles.length
  const score = scoreSmoothed(sequencesByLabel(angles, probabilities), LABELS, DEFAULT_SMOOTHER_OPTIONS)
  assert.equal(score.frames, angles.length)
  assert.ok(score.undecided >= LABELS.length * (DEFAULT_SMOOTHER_OPTIONS.hold - 1), 'each fresh sequence is undecided for at least hold − 1 frames')
  assert.ok(score.accuracy > perFrame + 0.1, `smoothed ${score.accuracy} vs per-frame ${perFrame}`)
  assert.ok(score.accuracy <= 1 - score.undecided / score.frames)
  assert.equal(smoothedAccuracy(angles, probabilities, LABELS), score.accuracy)
  assert.ok(score.openClosedAccuracy >= score.accuracy)
})
