/**
 * A request's frames for one door go through the window update and the
 * prediction together: one tensor call per batch (per model), never one per
 * frame. Batching must not change a single answer: the same real frames fed
 * one at a time, in batches of 20 and in batches of 100 make the same
 * sequence of door states (state, angle, confidence, recalibration flag),
 * each change at the same frame — through DoorStates with a door's own
 * model, through the DoorFeed of a door on the global model, and end to end
 * through POST /server/post/frames and the doors' announcements.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { DoorPredictor } from '../../../ml/door/predictor.js'
import { Predictor } from '../../../ml/global/predictor.js'
import { trainModel } from '../../../ml/global/trainer.js'
import { DoorFeed } from '../../../plugins/doors/door-feed.js'
import { DoorStates, type DoorSnapshot } from '../../../plugins/doors/door-states.js'
import type { Door } from '../../../schemas/doors.js'
import { byAngle, calibratedModel, rpiFrames } from '../../fixtures/door-model.js'
import { rawPiFrames } from '../../fixtures/frames.js'
import { sessionSlice } from '../../fixtures/training.js'
import { buildTestApp } from '../../helper.js'

await tf.setBackend('cpu')
tf.enableProdMode()

const BATCHES = [1, 20, 100] as const
/** Milliseconds between two frames (20 frames/s). */
const FRAME_MS = 50
const T0 = Date.UTC(2026, 0, 5, 8)

const angleFrames = (angle: number, from: number, to: number): Float32Array[] => (byAngle.get(angle) ?? []).slice(from, to)

/**
 * A door's day in real frames the model never saw: closed, wide open, closed,
 * half open, another room (novel: needs recalibration), then open again.
 */
const journey: Float32Array[] = [
  ...angleFrames(0, 100, 250),
  ...angleFrames(90, 100, 250),
  ...angleFrames(0, 250, 350),
  ...angleFrames(45, 100, 220),
  ...rpiFrames.slice(0, 150),
  ...angleFrames(90, 250, 400)
]

/** What a user sees of one change of a door, and the frame that made it (from its time). */
interface Change { state: string, angle: number | null, confidence: number, needsRecalibration: boolean, unfamiliarTo: string | null, since: number }

function changeOf (snapshot: DoorSnapshot): Change {
  const { state, angle, confidence, needsRecalibration, unfamiliarTo } = snapshot
  return { state, angle, confidence, needsRecalibration, unfamiliarTo, since: Date.parse(snapshot.since) }
}

/** The frames in batches of `size` (the last one shorter), each with the time its last frame arrived. */
function batchesOf<T> (frames: readonly T[], size: number): Array<{ frames: T[], at: number, end: number }> {
  const batches: Array<{ frames: T[], at: number, end: number }> = []
  for (let start = 0; start < frames.length; start += size) {
    const end = Math.min(frames.length, start + size)
    batches.push({ frames: frames.slice(start, end), at: T0 + (end - 1) * FRAME_MS, end })
  }
  return batches
}

/**
 * The changes of one run fed in batches of `size`, with the time of each
 * change mapped back to a frame index: a change at frame i one at a time
 * comes, in batches, with the batch that holds frame i (its time is its last frame's).
 */
function assertSameChanges (runs: Map<number, Change[]>, what: string): void {
  const single = runs.get(1) as Change[]
  assert.ok(single.length >= 4, `${what}: the journey moves the door (${single.map((c) => c.state).join(' → ')})`)
  for (const size of BATCHES.slice(1)) {
    const batched = runs.get(size) as Change[]
    const batchEnd = (since: number): number => {
      const frame = Math.round((since - T0) / FRAME_MS)
      return T0 + (Math.min(journey.length, (Math.floor(frame / size) + 1) * size) - 1) * FRAME_MS
    }
    assert.deepEqual(
      batched,
      single.map((change) => ({ ...change, since: batchEnd(change.since) })),
      `${what}: batches of ${size} change the door as frames one at a time do, each change with the batch of its frame`
    )
  }
}

test('a door\'s own model: frames one at a time, in batches of 20 and of 100 make the same door states; one tensor call per batch', async () => {
  const trained = await calibratedModel()
  const predictor = await DoorPredictor.load(tf, trained.artifacts, trained.meta)
  try {
    const runs = new Map<number, Change[]>()
    for (const size of BATCHES) {
      let clock = T0
      const states = new DoorStates({ window: 15, hold: 5, staleAfterS: 30, now: () => clock })
      const feed = new DoorFeed({
        states,
        ownModel: () => ({ version: 'door5-a', predictor, closedOrAjar: [] }),
        novelty: () => undefined,
        classify: () => { throw new Error('a door with a model of its own never asks the global model') },
        now: () => clock
      })
      const changes: Change[] = []
      states.on('change', (snapshot) => changes.push(changeOf(snapshot)))
      const matMuls: number[] = []
      for (const batch of batchesOf(journey, size)) {
        clock = batch.at
        const profile = await tf.profile(() => { feed.observe(5, batch.frames) })
        matMuls.push(profile.kernelNames.filter((name) => name === 'BatchMatMul').length)
      }
      // the window holds k frames: a batch that completes no window makes no call
      const windowsBefore = (end: number) => Math.max(0, end - trained.meta.window + 1)
      const expected = batchesOf(journey, size).map((batch) => windowsBefore(batch.end) > windowsBefore(batch.end - batch.frames.length) ? 1 : 0)
      assert.deepEqual(matMuls, expected, `batches of ${size}: one matMul (both heads) per batch that completes a window`)
      runs.set(size, changes)
    }
    assertSameChanges(runs, 'own model')
    const states = (runs.get(1) as Change[]).map((change) => change.needsRecalibration ? 'unfamiliar' : change.state)
    for (const expected of ['closed', 'open', 'unfamiliar']) assert.ok(states.includes(expected), `${expected} in ${states.join(' → ')}`)
    assert.equal(states[states.length - 1], 'open', 'familiar frames clear the flag and the door reads open again')
  } finally {
    predictor.dispose()
  }
})

test('a door on the global model: the same answers, novelty and smoothing in batches of 1, 20 and 100; one global predict per batch', async () => {
  // the global model with its window novelty, trained on the first 150 frames of each angle
  const slice = sessionSlice(150)
  const trained = await trainModel(tf, { kind: 'csi', features: slice.map((r) => r.features), angles: slice.map((r) => r.angle) }, { seed: 1, epochs: 5 })
  const predictor = await Predictor.load(tf, trained.artifacts, trained.meta)
  const novelty = predictor.novelty
  assert.ok(novelty, 'the global model carries its window novelty')
  try {
    const runs = new Map<number, Change[]>()
    for (const size of BATCHES) {
      let clock = T0
      const states = new DoorStates({ window: 15, hold: 5, staleAfterS: 30, now: () => clock })
      const asked: number[] = []
      const feed = new DoorFeed({
        states,
        ownModel: () => undefined,
        novelty: () => ({ version: 'csi-a', model: novelty }),
        classify: async (frames) => {
          asked.push(frames.length)
          return { batch: { version: 'csi-a', labels: trained.meta.labels }, predictions: predictor.predict(frames) }
        },
        now: () => clock
      })
      const changes: Change[] = []
      states.on('change', (snapshot) => changes.push(changeOf(snapshot)))
      for (const batch of batchesOf(journey, size)) {
        clock = batch.at
        feed.observe(6, batch.frames)
        // the answers come a moment later, before the next batch
        await new Promise((resolve) => setImmediate(resolve))
      }
      assert.deepEqual(asked, batchesOf(journey, size).map((batch) => batch.frames.length), `batches of ${size}: the global model is asked once per batch`)
      runs.set(size, changes)
    }
    assertSameChanges(runs, 'global model')
    assert.ok((runs.get(1) as Change[]).some((change) => change.unfamiliarTo === 'global'), 'another room is not the global model\'s to answer')
  } finally {
    predictor.dispose()
  }
})

test('end to end: POST /server/post/frames with 1, 20 or 100 frames a request announces the same door states; one door-model call per request', async (t) => {
  const app = await buildTestApp(t)
  // door 5's own model, calibrated closed, ajar and open on the first 200 frames of each (floor 0, ajar accepted:
  // this test is about batching, and session A cannot tell ajar from closed)
  const calibration = [0, 15, 90].flatMap((angle) => angleFrames(angle, 0, 200).map((frame) => ({ frame, angle })))
  const calibrated = new Promise<{ version: string, activated: boolean }>((resolve) => app.model.doorModels.once('calibrated', resolve))
  await app.model.doorModels.start(5, calibration.map((c) => c.frame), calibration.map((c) => c.angle), { floor: 0, acceptAjarAsClosed: true })
  const outcome = await calibrated
  if (!outcome.activated) await app.model.doorModels.activate(outcome.version, { force: true })
  const window = app.model.doorModels.get(5)?.predictor.meta.window ?? 0
  assert.ok(window > 1, `door 5 reads its frames through its own model (${outcome.version})`)

  // frames as the Pis send them: session A's as 106 features, the other room's as raw Pi frames
  const posted: unknown[] = [
    ...angleFrames(0, 300, 420).map((frame) => Array.from(frame)),
    ...angleFrames(90, 300, 420).map((frame) => Array.from(frame)),
    ...rawPiFrames().slice(0, 120),
    ...angleFrames(0, 420, 520).map((frame) => Array.from(frame))
  ]
  type Seen = Pick<Change, 'state' | 'angle' | 'confidence' | 'needsRecalibration'>
  const seen = ({ state, angle, confidence, needsRecalibration }: Seen): Seen => ({ state, angle, confidence, needsRecalibration })
  const runs = new Map<number, Seen[]>()
  for (const size of BATCHES) {
    // a fresh window and hysteresis for each run: the door forgets its model and takes it back
    app.model.doorModels.deactivate(5)
    await app.model.doorModels.activate(outcome.version, { force: true })
    await new Promise((resolve) => setImmediate(resolve))
    const states: Seen[] = []
    let doors: Seen[] = []
    const onState = (snapshot: DoorSnapshot) => { if (snapshot.device === 5) states.push(seen(snapshot)) }
    const onDoor = (door: Door) => { if (door.device === 5) doors.push(seen(door)) }
    app.doors.on('state', onState)
    app.doors.on('door', onDoor)
    for (let start = 0; start < posted.length; start += size) {
      const frames = posted.slice(start, start + size)
      const before = states.length
      doors = []
      const profile = await tf.profile(async () => {
        const res = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 5, frames } })
        assert.equal(res.statusCode, 200, res.body)
        // the end of the request's turn: its announcements
        await new Promise((resolve) => setImmediate(resolve))
      })
      // one call of the door's model (both heads in one matMul) for a request whose frames complete a window, none otherwise
      const completes = start + frames.length >= window ? 1 : 0
      assert.equal(profile.kernelNames.filter((name) => name === 'BatchMatMul').length, completes, `batches of ${size}, frames ${start}..`)
      if (states.length > before) {
        // the whole door is announced after the request that moved it, with its latest state (and its latest window's confidence)
        const { confidence, ...door } = doors[doors.length - 1] ?? {}
        const { confidence: changedWith, ...change } = states[states.length - 1]
        assert.deepEqual(door, change, `batches of ${size}, frames ${start}..: the door announced with its latest state`)
        assert.ok(typeof confidence === 'number' && typeof changedWith === 'number')
      }
    }
    app.doors.off('state', onState)
    app.doors.off('door', onDoor)
    runs.set(size, states)
  }
  const single = runs.get(1) as Seen[]
  t.diagnostic(`door 5: ${single.map((s) => s.needsRecalibration ? 'needs recalibration' : `${s.state} ${s.angle ?? ''}`).join(' → ')}`)
  assert.ok(single.length >= 3, `the frames move the door: ${single.map((s) => s.state).join(' → ')}`)
  assert.ok(single.some((s) => s.needsRecalibration), 'the other room is unfamiliar')
  for (const size of BATCHES.slice(1)) {
    assert.deepEqual(runs.get(size), single, `batches of ${size}: every change of the door announced as frames one at a time announce it`)
  }
})
