import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CALIBRATION_FRAMES_PER_ANGLE, calibrationProblems, calibrationVerdict } from '../../ml/door-calibration.js'
import type { DoorEvaluation } from '../../ml/door-evaluation.js'

const frames = (angle: number, count: number) => Array.from({ length: count }, () => angle)

test('a calibration needs the closed door, an open angle and enough frames of each, and says how long to record', () => {
  const enough = CALIBRATION_FRAMES_PER_ANGLE
  assert.ok(enough >= 50, 'never fewer than 50 frames per state')
  assert.deepEqual(calibrationProblems({ angles: [...frames(0, enough), ...frames(90, enough)] }), [])
  const onlyClosed = calibrationProblems({ angles: frames(0, enough) }, 20)
  assert.equal(onlyClosed.length, 1)
  assert.match(onlyClosed[0], /^No frames of the open door yet: open it .* at least \d+ frames there \(about \d+ s at this door.s 20 frames\/s\)\.$/)
  const onlyOpen = calibrationProblems({ angles: frames(45, enough) })
  assert.match(onlyOpen[0], /^No frames of the closed door yet: close it and record the closed position \(angle 0\)/)
  const short = calibrationProblems({ angles: [...frames(0, 40), ...frames(90, enough)] }, 10)
  assert.deepEqual(short, [`Only 40 frames of the door closed (0°): record ${enough - 40} more (about ${Math.ceil((enough - 40) / 10)} s at this door's 10 frames/s), so the model has enough to learn from and to be checked on.`])
  assert.equal(calibrationProblems({ angles: [] }).length, 2)
})

test('the verdict activates a model at or above the floor and says why not below it', () => {
  const evaluation = (balancedAccuracy: number) => ({ doorState: { openClosed: { balancedAccuracy } } }) as unknown as DoorEvaluation
  assert.deepEqual(calibrationVerdict(evaluation(0.9), 0.9), { activate: true, reasons: [] })
  const below = calibrationVerdict(evaluation(0.72), 0.9)
  assert.equal(below.activate, false)
  assert.match(below.reasons[0], /right 72 % of the time .* it needs 90 % to take over this door, so the door keeps the model it had/)
  assert.match(below.reasons[1], /door held still/)
  const unjudged = calibrationVerdict(undefined, 0.9)
  assert.equal(unjudged.activate, false)
  assert.match(unjudged.reasons[0], /too short to check/)
})
