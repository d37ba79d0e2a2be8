import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { parseFrame } from '../../../domain/frames.js'
import { trainDoorModel } from '../../../ml/door/train.js'
import { DoorPredictor } from '../../../ml/door/predictor.js'
import { buildWindowNovelty, WindowNoveltyModel } from '../../../ml/novelty.js'
import { DoorStates } from '../../../plugins/doors/door-states.js'
import { sessionRows } from '../../fixtures/training.js'
import { RPI_RAW_FRAMES } from '../../helper.js'
import type { Prediction } from '../../../schemas/model.js'
import type { DoorState } from '../../../schemas/inference.js'

await tf.setBackend('cpu')
tf.enableProdMode()

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

/** Frames of session A at `angle`, from `from` on. */
const framesAt = (angle: number, count: number, from = 0): Float32Array[] =>
  sessionRows().filter((row) => row.angle === angle).slice(from, from + count).map((row) => row.features)
const rpiFrames = () => readFileSync(RPI_RAW_FRAMES, 'utf8').trim().split('\n').map((line) => parseFrame(line))

test('a door on the global model shows its answer once its windows look familiar, and reads unknown (another room) once they do not', () => {
  const slice = [0, 90].flatMap((angle) => framesAt(angle, 300).map((frame) => ({ frame, angle })))
  const novelty = { version: 'csi-a', model: new WindowNoveltyModel(buildWindowNovelty(slice.map((s) => s.frame), slice.map((s) => s.angle))) }
  const doors = new DoorStates({ window: 1, hold: 1, staleAfterS: 30, now: () => 1000 })
  const changes: string[] = []
  doors.on('change', (door) => changes.push(`${door.device}:${door.state}${door.unfamiliarTo ? `:${door.unfamiliarTo}` : ''}`))

  // a door of that room: the smoother's state waits for three familiar windows (k 25 + 2 frames)
  const home = framesAt(90, 40, 320)
  doors.observeNovelty(1, home.slice(0, 26), novelty)
  doors.observe(1, repeat(90, 26), LABELS)
  assert.equal(doors.get(1)?.state, 'unknown', 'two windows are not enough to trust the model here')
  doors.observeNovelty(1, home.slice(26, 27), novelty)
  assert.equal(doors.get(1)?.state, 'open')
  assert.equal(doors.get(1)?.needsRecalibration, false)

  // another room: never a state, then not-calibrated once 50 windows in a row are novel
  const away = rpiFrames().slice(0, 24 + 49)
  doors.observeNovelty(2, away, novelty)
  doors.observe(2, repeat(45, away.length), LABELS)
  assert.equal(doors.get(2)?.state, 'unknown')
  assert.equal(doors.get(2)?.unfamiliarTo, null, '49 novel windows are not yet 50')
  assert.equal(doors.observeNovelty(2, rpiFrames().slice(73, 74), novelty), 1, 'still unknown, and now it needs recalibration')
  assert.equal(doors.get(2)?.unfamiliarTo, 'global')
  assert.equal(doors.get(2)?.needsRecalibration, true)
  assert.deepEqual(changes, ['1:open', '2:unknown:global'])
  // a door with a model of its own is not the global model's to judge
  assert.equal(doors.observeNovelty(1, away, undefined), 0)
  assert.equal(doors.get(1)?.state, 'open', 'a global model without a novelty summary answers as before')
})

test('a door model that cannot tell ajar from closed reads closedOrAjar, at most .5 confident', async () => {
  const calibration = [0, 15, 90].flatMap((angle) => framesAt(angle, 150).map((frame) => ({ frame, angle })))
  const trained = await trainDoorModel(tf, { frames: calibration.map((c) => c.frame), angles: calibration.map((c) => c.angle) }, { seed: 1, epochs: 10 })
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  const doors = new DoorStates({ window: 1, hold: 1, staleAfterS: 30 })
  const closed = framesAt(0, 60, 200)
  doors.observeWindows(3, closed, { version: 'door3-a', predictor, closedOrAjar: [15] })
  doors.observeWindows(4, closed, { version: 'door4-a', predictor, closedOrAjar: [] })
  const [limited, plain] = [doors.get(3), doors.get(4)]
  assert.equal(plain?.state, 'closed')
  assert.equal(limited?.state, 'closedOrAjar')
  assert.equal(limited?.angle, 0)
  assert.ok((plain?.confidence ?? 0) > 0.5)
  assert.equal(limited?.confidence, 0.5)
  assert.deepEqual(limited?.closedOrAjar, [15])
  assert.equal(limited?.needsRecalibration, false, 'a limit of the calibration is not unfamiliar frames')
  predictor.dispose()
})
