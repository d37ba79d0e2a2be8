import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DoorStates, type DoorSnapshot } from '../../../plugins/doors/door-states.js'
import type { Prediction } from '../../../schemas/model.js'

// a cluster's door is held (shown as its owner reported it) until this instance owns it and its window is rebuilt
const LABELS = [0, 45, 90]
function prediction (angle: number): Prediction {
  const probabilities = LABELS.map((label) => label === angle ? 0.8 : 0.1)
  return { angle, state: angle === 0 ? 'closed' : 'open', confidence: 0.8, probabilities }
}
const repeat = (angle: number, count: number) => Array.from({ length: count }, () => prediction(angle))

function reported (device: number, state: 'open' | 'closed' | 'unknown', angle: number | null, at: number): DoorSnapshot {
  return {
    device,
    state,
    angle,
    confidence: state === 'unknown' ? 0 : 0.9,
    since: new Date(at).toISOString(),
    lastFrameAt: new Date(at).toISOString(),
    frameRate: 20,
    needsRecalibration: false,
    model: { version: 'v1', scope: 'global' },
    unfamiliarTo: null,
    closedOrAjar: []
  }
}

test('a held door shows its owner\'s report; frames move it silently; its release emits only a real change', () => {
  let clock = Date.parse('2026-12-07T10:00:00Z')
  const doors = new DoorStates({ window: 3, hold: 2, staleAfterS: 30, now: () => clock })
  const changes: Array<[number, string]> = []
  doors.on('change', (door) => changes.push([door.device, door.state]))

  doors.hold(reported(5, 'open', 90, clock))
  assert.equal(doors.get(5)?.state, 'open')
  assert.ok(doors.isHeld(5))
  assert.deepEqual(doors.list().map((door) => door.device), [5])
  // the same report again: nothing a user sees moved
  doors.hold(reported(5, 'open', 90, clock))
  assert.deepEqual(changes, [[5, 'open']])

  // the window is rebuilt from the stream while held: the local state goes unknown → open unseen
  clock += 100
  assert.equal(doors.observe(5, repeat(90, 5), LABELS), 0)
  assert.equal(doors.get(5)?.state, 'open')
  doors.release(5)
  assert.equal(doors.isHeld(5), false)
  assert.deepEqual(changes, [[5, 'open']], 'the handover shows no flap')
  assert.equal(doors.get(5)?.lastFrameAt, new Date(clock).toISOString(), 'what this process computes is shown now')

  // a door whose rebuilt window says otherwise changes once, on release
  doors.hold(reported(6, 'open', 90, clock))
  doors.observe(6, repeat(0, 5), LABELS)
  doors.release(6)
  assert.deepEqual(changes.slice(1), [[6, 'open'], [6, 'closed']])
})

test('a released door without frames here keeps its owner\'s last report until its own first change, or until it is stale', () => {
  let clock = Date.parse('2026-12-07T10:00:00Z')
  const doors = new DoorStates({ window: 1, hold: 1, staleAfterS: 10, now: () => clock })
  const changes: Array<[number, string]> = []
  doors.on('change', (door) => changes.push([door.device, door.state]))

  doors.hold(reported(1, 'closed', 0, clock))
  doors.hold(reported(2, 'open', 90, clock))
  doors.release(1)
  doors.release(2)
  assert.equal(doors.get(1)?.state, 'closed')
  assert.equal(doors.isHeld(1), false)

  // door 1's first frames agree with the report: no change event, its own state from here on
  clock += 1000
  doors.observe(1, repeat(0, 1), LABELS)
  assert.equal(doors.get(1)?.lastFrameAt, new Date(clock).toISOString())
  assert.deepEqual(changes, [[1, 'closed'], [2, 'open']])

  // door 2 never sends again: unknown once its owner's last frame is older than staleAfterS
  clock += 8000
  assert.equal(doors.expireStale(), 0)
  clock += 1500
  assert.equal(doors.expireStale(), 1, 'door 2 only: 10.5 s since its owner\'s last frame, 9.5 s since door 1\'s')
  assert.equal(doors.get(2)?.state, 'unknown')
  assert.deepEqual(changes.slice(2), [[2, 'unknown']])
  assert.equal(doors.expireStale(), 0, 'once')
})
