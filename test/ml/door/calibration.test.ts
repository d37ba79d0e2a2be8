import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import {
  CALIBRATION_FRAMES_PER_ANGLE, calibrateDoorModel, calibrationProblems, calibrationVerdict, closedOrAjarAngles, MAX_AJAR_ANGLE, verdictOf
} from '../../../ml/door/calibration.js'
import { minimumFramesForEvaluation, permuteSubcarriers, type AjarCheck, type AngleReadings, type DoorEvaluation } from '../../../ml/door/evaluation.js'
import { AJAR_CLOSED_LIMIT } from '../../../ml/door/self-check.js'
import { sessionRows } from '../../fixtures/training.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const frames = (angle: number, count: number) => Array.from({ length: count }, () => angle)
const enough = CALIBRATION_FRAMES_PER_ANGLE

test('the protocol is closed, ajar and fully open, ~10 s each; it says what to record and why', () => {
  assert.equal(enough, 200, '~10 s at 20 frames/s')
  assert.deepEqual(calibrationProblems({ angles: [...frames(0, enough), ...frames(15, enough), ...frames(90, enough)] }), [])
  assert.deepEqual(calibrationProblems({ angles: [...frames(0, enough), ...frames(MAX_AJAR_ANGLE, enough), ...frames(60, enough), ...frames(90, enough)] }), [])

  // closed and fully open only: the wizard's old main path
  const wide = calibrationProblems({ angles: [...frames(0, enough), ...frames(90, enough)] }, 20)
  assert.equal(wide.length, 1)
  assert.match(wide[0], new RegExp(
    String.raw`^No ajar position yet: record the door ajar — the smallest opening that must count as open, 15° unless you choose another of at most 30° — ` +
    String.raw`for at least 200 frames \(about 10 s at this door.s 20 frames\/s\)\. ` +
    String.raw`A door calibrated only closed and open at 90° cannot tell ajar from closed`
  ))
  assert.match(calibrationProblems({ angles: [...frames(0, enough), ...frames(45, enough), ...frames(90, enough)] })[0],
    /^No ajar position yet: .* only closed and wide open cannot tell ajar from closed/)
  // ajar without a wider angle
  assert.match(calibrationProblems({ angles: [...frames(0, enough), ...frames(15, enough)] })[0],
    /^No wider open position yet: record the door fully open \(90°\)/)

  const onlyClosed = calibrationProblems({ angles: frames(0, enough) }, 20)
  assert.equal(onlyClosed.length, 1)
  assert.match(onlyClosed[0], new RegExp(
    String.raw`^No frames of the open door yet: ` +
    String.raw`record it ajar \(15°, the smallest opening that must count as open\) and fully open \(90°\), at least 200 frames each`
  ))
  assert.match(calibrationProblems({ angles: [...frames(15, enough), ...frames(90, enough)] })[0],
    /^No frames of the closed door yet: close it and record the closed position \(0°\)/)
  const short = calibrationProblems({ angles: [...frames(0, 40), ...frames(15, enough), ...frames(90, enough)] }, 10)
  assert.deepEqual(short, [
    `Only 40 frames of the door closed (0°): record ${enough - 40} more (about ${Math.ceil((enough - 40) / 10)} s at this door's 10 frames/s), ` +
    'so the model has enough to learn from and to be checked on.'
  ])
  assert.equal(calibrationProblems({ angles: [] }).length, 2)
})

/** An evaluation with per-angle readings and a self-check, as the trainer makes them. */
function evaluation (perAngle: Array<[number, number, number]>, checks: Array<Pick<AjarCheck, 'angle' | 'model' | 'closedShare'>> = []): DoorEvaluation {
  const readings: AngleReadings[] = perAngle.map(([angle, closed, open]) => ({ angle, frames: closed + open, closed, open, unknown: 0 }))
  const closedRecall = readings.filter((r) => r.angle === 0).reduce((n, r) => n + r.closed / r.frames, 0)
  const openFrames = readings.filter((r) => r.angle !== 0).reduce((n, r) => n + r.frames, 0)
  const openRecall = readings.filter((r) => r.angle !== 0).reduce((n, r) => n + r.open, 0) / openFrames
  const full = checks.map((c) => ({ ...c, frames: 50, unknownShare: 0, passed: c.closedShare <= AJAR_CLOSED_LIMIT }))
  return {
    labels: readings.map((r) => r.angle),
    holdout: 0.2,
    doorState: { openClosed: { balancedAccuracy: (closedRecall + openRecall) / 2 }, perAngle: readings },
    selfCheck: checks.length
      ? { ajarAngle: checks[0].angle, limit: AJAR_CLOSED_LIMIT, passed: full.every((c) => c.passed), checks: full, seconds: 0 }
      : undefined
  } as unknown as DoorEvaluation
}

test('the verdict: a failed self-check refuses with the angle, the share and what to try; accepted, ajar counts as closed', () => {
  const gate = { floor: 0.9, acceptAjarAsClosed: false }
  // separable: every check passes and the floor is met
  const good = calibrationVerdict(evaluation(
    [[0, 50, 0], [15, 0, 50], [90, 0, 50]],
    [{ angle: 15, model: 'held-out', closedShare: 0 }, { angle: 90, model: 'left-out', closedShare: 0 }]
  ), gate)
  assert.deepEqual(good, { activate: true, floor: 0.9, acceptAjarAsClosed: false, balancedAccuracy: 1, closedOrAjar: [], reasons: [] })

  // session A's kind: 15° reads closed on 62 % of its held-out frames
  const ajarClosed = evaluation(
    [[0, 50, 0], [15, 31, 19], [90, 0, 50]],
    [{ angle: 15, model: 'held-out', closedShare: 0.62 }, { angle: 90, model: 'left-out', closedShare: 0 }]
  )
  const refused = calibrationVerdict(ajarClosed, gate)
  assert.equal(refused.activate, false)
  assert.equal(refused.refusedBy, 'self-check')
  assert.deepEqual(refused.closedOrAjar, [15])
  assert.match(refused.reasons[0], /^15° read closed on 62 % of its held-out frames .*at most 10 % may\): this door cannot tell ajar from closed\.$/)
  assert.match(refused.reasons[1], /^Move the receiver or the transmitter so that the door.s edge crosses the straight line between the two boards/)
  assert.match(refused.reasons[2], /acceptAjarAsClosed: true/)

  // accepted: 15° counts with closed for the floor (closed-or-ajar 81/100 right against open 50/50: balanced .905)
  const accepted = calibrationVerdict(ajarClosed, { floor: 0.9, acceptAjarAsClosed: true })
  assert.equal(accepted.activate, true)
  assert.deepEqual(accepted.closedOrAjar, [15])
  assert.ok(Math.abs((accepted.balancedAccuracy ?? 0) - (81 / 100 + 1) / 2) < 1e-12)
  assert.match(accepted.reasons[0], /^Accepted as "closed or ajar": this door reports closedOrAjar where it would say closed, since 15° may read closed\./)

  // a left-out angle that reads closed is one more position that may read closed
  const leftOut = calibrationVerdict(evaluation(
    [[0, 50, 0], [15, 0, 50], [45, 10, 40], [90, 0, 50]],
    [{ angle: 15, model: 'held-out', closedShare: 0 }, { angle: 45, model: 'left-out', closedShare: 0.4 }, { angle: 90, model: 'left-out', closedShare: 0 }]
  ), gate)
  assert.deepEqual(leftOut.closedOrAjar, [45])
  assert.match(leftOut.reasons[0], new RegExp(
    String.raw`^A model calibrated without 45° read the door at 45° as closed on 40 % of its frames: ` +
    String.raw`positions between the ones you recorded may read closed\.$`
  ))

  // every open angle fails: nothing to accept
  const hopeless = calibrationVerdict(evaluation(
    [[0, 50, 0], [15, 50, 0], [90, 40, 10]],
    [{ angle: 15, model: 'held-out', closedShare: 1 }, { angle: 90, model: 'left-out', closedShare: 0.8 }]
  ), { floor: 0.5, acceptAjarAsClosed: true })
  assert.equal(hopeless.activate, false)
  assert.match(hopeless.reasons.join(' '), /Every open position you recorded \(15° and 90°\) may read closed/)

  // below the floor
  const below = calibrationVerdict(evaluation([[0, 36, 14], [15, 0, 50], [90, 2, 48]], [{ angle: 15, model: 'held-out', closedShare: 0 }]), gate)
  assert.equal(below.activate, false)
  assert.equal(below.refusedBy, 'floor')
  assert.match(below.reasons[0], /right 85 % of the time .* it needs 90 % to take over this door, so the door keeps the model it had/)
  assert.match(below.reasons[1], /door held still/)
  const unjudged = calibrationVerdict(undefined, gate)
  assert.equal(unjudged.activate, false)
  assert.equal(unjudged.refusedBy, 'evaluation')
  assert.match(unjudged.reasons[0], /too short to check/)
})

/** Each angle's frames `from`..`from + count` of session A (in file order), optionally as another angle. */
function calibration (angles: Array<{ angle: number, as?: number, permute?: number }>, from = 100, count = 220): { frames: Float32Array[], angles: number[] } {
  const out = { frames: [] as Float32Array[], angles: [] as number[] }
  for (const { angle, as, permute } of angles) {
    const rows = sessionRows().filter((row) => row.angle === angle).slice(from, from + count)
    const frames = permute === undefined ? rows.map((row) => row.features) : permuteSubcarriers(rows.map((row) => row.features), permute)
    out.frames.push(...frames)
    out.angles.push(...frames.map(() => as ?? angle))
  }
  return out
}

test('calibrateDoorModel on session A 0/15/90: the model keeps all its frames, and the self-check finds that 15° reads closed', async () => {
  const input = calibration([{ angle: 0 }, { angle: 15 }, { angle: 90 }])
  const trained = await calibrateDoorModel(tf, input, { seed: 2, epochs: 10 }, { gate: { floor: 0.9, acceptAjarAsClosed: false } })
  assert.equal(trained.meta.trainFrames, input.frames.length)
  const e = trained.meta.evaluation as DoorEvaluation
  assert.equal(e.trainFrames, 3 * 176)
  assert.equal(e.testFrames, 3 * 44)
  const selfCheck = e.selfCheck
  assert.ok(selfCheck)
  assert.equal(selfCheck.ajarAngle, 15)
  assert.deepEqual(selfCheck.checks.map((c) => [c.angle, c.model]), [[15, 'held-out'], [90, 'left-out']])
  const ajar = selfCheck.checks[0]
  assert.ok(ajar.frames > 0)
  // the held-out check is the evaluation's own replay of 15°
  const readings = e.doorState.perAngle?.find((r) => r.angle === 15)
  assert.equal(ajar.closedShare, (readings?.closed ?? 0) / (readings?.frames ?? 1))
  assert.ok(ajar.closedShare > AJAR_CLOSED_LIMIT, `15° held-out read closed on ${ajar.closedShare}`)
  assert.equal(selfCheck.passed, false)
  const verdict = verdictOf(trained.meta)
  assert.ok(verdict)
  assert.equal(verdict.activate, false)
  assert.match(verdict.reasons[0], /^15° read closed on \d+ % of its held-out frames/)
  assert.deepEqual(closedOrAjarAngles(trained.meta), [15])
})

test('calibrateDoorModel: positions the channel tells apart pass the self-check with 0 % read closed', async () => {
  // another channel shape per position (subcarriers permuted): what a recording that separates them looks like
  const input = calibration([{ angle: 0 }, { angle: 30, as: 15, permute: 1 }, { angle: 60, as: 45, permute: 2 }, { angle: 90, permute: 3 }])
  const trained = await calibrateDoorModel(tf, input, { seed: 2, epochs: 10 }, { gate: { floor: 0.9, acceptAjarAsClosed: false } })
  const selfCheck = (trained.meta.evaluation as DoorEvaluation).selfCheck
  assert.ok(selfCheck)
  assert.deepEqual(selfCheck.checks.map((c) => [c.angle, c.model, c.closedShare]), [[15, 'held-out', 0], [45, 'left-out', 0], [90, 'left-out', 0]])
  assert.equal(selfCheck.passed, true)
  assert.equal(verdictOf(trained.meta)?.activate, true)
  assert.deepEqual(closedOrAjarAngles(trained.meta), [])

  // too small to split: the model comes without an evaluation, and the verdict says why
  assert.equal(minimumFramesForEvaluation(25, 3), 131)
  const small = calibration([{ angle: 0 }, { angle: 15 }, { angle: 90 }], 100, 60)
  const smallModel = await calibrateDoorModel(tf, small, { seed: 2, epochs: 5 }, { gate: { floor: 0.9, acceptAjarAsClosed: false } })
  assert.equal(smallModel.meta.trainFrames, 3 * 60)
  assert.equal(smallModel.meta.evaluation, undefined)
  assert.match(verdictOf(smallModel.meta)?.reasons[0] ?? '', /too short to check/)
})
