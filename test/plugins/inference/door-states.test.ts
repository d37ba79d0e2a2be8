import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { DoorStates } from '../../../plugins/inference/door-states.js'
import type { Prediction } from '../../../schemas/model.js'
import type { DoorState } from '../../../schemas/inference.js'

const LABELS = [0, 45, 90]
function prediction (angle: number): Prediction {
  const probabilities = LABELS.map((label) => label === angle ? 0.8 : 0.1)
  return { angle, state: angle === 0 ? 'closed' : 'open', confidence: 0.8, probabilities }
}
const repeat = (angle: number, count: number) => Array.from({ length: count }, () => prediction(angle))

test('each device has its own smoothed door; changes are emitted and listed by device', () => {
  let clock = Date.parse('2024-05-01T10:00:00Z')
  const doors = new DoorStates({ window: 3, hold: 2, staleAfterS: 30, now: () => clock })
  const changes: DoorState[] = []
  doors.on('change', (door) => changes.push(door))

  assert.equal(doors.observe(7, repeat(0, 1), LABELS), 0)
  assert.equal(doors.get(7)?.state, 'unknown')
  assert.equal(doors.observe(7, repeat(0, 1), LABELS), 1)
  clock += 1000
  assert.equal(doors.observe(3, repeat(90, 5), LABELS), 1)
  assert.deepEqual(changes.map((door) => [door.device, door.state, door.angle]), [[7, 'closed', 0], [3, 'open', 90]])
  assert.deepEqual(doors.list().map((door) => door.device), [3, 7])
  const door3 = doors.get(3)
  assert.equal(door3?.since, '2024-05-01T10:00:01.000Z')
  assert.equal(door3?.lastFrameAt, '2024-05-01T10:00:01.000Z')
  assert.ok(door3 && door3.confidence > 0.5)
  assert.equal(doors.get(99), undefined)
})

test('expireStale marks only the doors silent for staleAfterS unknown, emitting a change for each', () => {
  let clock = 1_000_000
  const doors = new DoorStates({ window: 1, hold: 1, staleAfterS: 10, now: () => clock })
  const changes: DoorState[] = []
  doors.on('change', (door) => changes.push(door))
  doors.observe(1, repeat(45, 1), LABELS)
  clock += 6000
  doors.observe(2, repeat(0, 1), LABELS)
  changes.length = 0
  clock += 5000
  assert.equal(doors.expireStale(), 1)
  assert.deepEqual(changes.map((door) => [door.device, door.state, door.angle, door.confidence]), [[1, 'unknown', null, 0]])
  assert.equal(doors.get(1)?.since, new Date(clock).toISOString())
  assert.equal(doors.get(2)?.state, 'closed')
  assert.equal(doors.expireStale(), 0, 'an unknown door does not expire again')
})

test('the staleness timer turns a silent door unknown on its own, and stop() ends it', async (t) => {
  const doors = new DoorStates({ window: 1, hold: 1, staleAfterS: 0.05 })
  // the staleness timer is unref'd by design: keep the test process alive while waiting for it
  const keepAlive = setTimeout(() => {}, 5000)
  t.after(() => {
    doors.stop()
    clearTimeout(keepAlive)
  })
  doors.start()
  doors.observe(4, repeat(90, 1), LABELS)
  assert.equal(doors.get(4)?.state, 'open')
  const [door] = await once(doors, 'change') as [DoorState]
  assert.equal(door.state, 'unknown')
  assert.ok(Date.now() - Date.parse(door.lastFrameAt ?? '') >= 50)
  doors.stop()
  assert.equal(doors.listenerCount('change'), 0)
})

test('rejects a non-positive staleAfterS and a bad window', () => {
  assert.throws(() => new DoorStates({ window: 1, hold: 1, staleAfterS: 0 }), /staleAfterS/)
  assert.throws(() => new DoorStates({ window: 0, hold: 1, staleAfterS: 1 }), /window/)
})
