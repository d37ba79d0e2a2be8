import { test } from 'node:test'
import assert from 'node:assert/strict'
import { changeFrames, DoorHysteresis, firstStateFrames, firstStateSeconds, type WindowObservation } from '../../domain/door-hysteresis.js'

const closed: WindowObservation = { state: 'closed', angle: 0, closedProbability: 0.9, novel: false }
const open = (angle = 45): WindowObservation => ({ state: 'open', angle, closedProbability: 0.2, novel: false })
const novel: WindowObservation = { ...closed, novel: true }

/** Feeds observations and returns the reported state after each. */
function states (h: DoorHysteresis, observations: WindowObservation[], start = 0): string[] {
  return observations.map((o, i) => {
    h.push(o, start + i)
    return h.door.state
  })
}

test('a state is entered from unknown after `enter` agreeing windows, left after `leave`', () => {
  const h = new DoorHysteresis({ enter: 3, leave: 4, novelAfter: 5, familiarAfter: 2 })
  assert.deepEqual(states(h, [closed, closed, closed]), ['unknown', 'unknown', 'closed'])
  assert.equal(h.door.angle, 0)
  assert.equal(h.door.confidence, 0.9)
  assert.equal(h.door.since, 2)
  assert.deepEqual(states(h, [open(), open(), open(), open()], 3), ['closed', 'closed', 'closed', 'open'])
  assert.equal(h.door.angle, 45)
  assert.ok(Math.abs(h.door.confidence - 0.8) < 1e-12)
  assert.equal(h.door.since, 6)
})

test('a flicker shorter than `leave` never changes the state; an alternating stream never enters one', () => {
  const h = new DoorHysteresis({ enter: 2, leave: 4, novelAfter: 5, familiarAfter: 2 })
  states(h, [closed, closed])
  assert.equal(h.door.state, 'closed')
  const flicker = [open(), open(), open(), closed, open(), open(), open(), closed, open(), closed]
  assert.ok(states(h, flicker, 2).every((s) => s === 'closed'))

  const fresh = new DoorHysteresis({ enter: 2, leave: 2, novelAfter: 5, familiarAfter: 2 })
  assert.ok(states(fresh, [closed, open(), closed, open(), closed, open()]).every((s) => s === 'unknown'))
})

test('an open angle moves only after `enter` windows agree on the new one', () => {
  const h = new DoorHysteresis({ enter: 2, leave: 3, novelAfter: 5, familiarAfter: 2 })
  states(h, [open(30), open(30)])
  assert.equal(h.door.angle, 30)
  h.push(open(60), 2)
  assert.equal(h.door.angle, 30)
  h.push(open(30), 3)
  h.push(open(60), 4)
  assert.equal(h.door.angle, 30)
  h.push(open(60), 5)
  assert.equal(h.door.angle, 60)
})

test('M consecutive novel windows set needsRecalibration and unknown; familiar windows clear it', () => {
  const h = new DoorHysteresis({ enter: 2, leave: 3, novelAfter: 3, familiarAfter: 4 })
  states(h, [closed, closed])
  assert.equal(h.door.state, 'closed')
  // two novel windows, then a familiar one: the count restarts, nothing changes
  assert.deepEqual(states(h, [novel, novel, closed, novel, novel], 2), ['closed', 'closed', 'closed', 'closed', 'closed'])
  assert.equal(h.door.needsRecalibration, false)
  assert.equal(h.push(novel, 7), true)
  assert.equal(h.door.state, 'unknown')
  assert.equal(h.door.angle, null)
  assert.equal(h.door.needsRecalibration, true)
  // more novel windows: still unknown; familiar ones: cleared after familiarAfter, then the state re-enters
  states(h, [novel, novel, novel], 8)
  assert.deepEqual(states(h, [open(), open(), open()], 11), ['unknown', 'unknown', 'unknown'])
  assert.equal(h.door.needsRecalibration, true)
  assert.equal(h.push(open(), 14), true)
  assert.equal(h.door.needsRecalibration, false)
  assert.equal(h.door.state, 'open', 'the familiar windows that cleared it count towards enter')
})

test('novel windows are no evidence: they neither count towards nor break a change', () => {
  const h = new DoorHysteresis({ enter: 1, leave: 3, novelAfter: 10, familiarAfter: 1 })
  h.push(closed, 0)
  assert.deepEqual(
    states(h, [open(), { ...open(), novel: true }, open(), { ...novel, state: 'closed' }, open()], 1),
    ['closed', 'closed', 'closed', 'closed', 'open']
  )
})

test('silence makes the door unknown; latency helpers say k − 1 + enter frames', () => {
  const h = new DoorHysteresis({ enter: 1, leave: 1, novelAfter: 3, familiarAfter: 1 })
  h.push(closed, 1000)
  assert.equal(h.expire(1500, 1000), false)
  assert.equal(h.expire(2000, 1000), true)
  assert.equal(h.door.state, 'unknown')
  assert.equal(h.door.since, 2000)
  assert.equal(firstStateFrames(25, { enter: 3 }), 27)
  assert.equal(firstStateSeconds(25, { enter: 3 }, 20), 1.35)
  assert.equal(changeFrames(25, { leave: 5 }), 29)
  assert.throws(() => new DoorHysteresis({ enter: 0, leave: 1, novelAfter: 1, familiarAfter: 1 }), /enter must be an integer/)
})
