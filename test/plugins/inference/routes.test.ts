import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { DoorSmoother } from '../../../domain/smoother.js'
import { parseFrame } from '../../../domain/frames.js'
import type { BatchResponse, DoorStateList, InferenceResult } from '../../../schemas/inference.js'
import { buildTestApp } from '../../helper.js'
import { esp32Lines, rawPiFrames, stringified } from '../../fixtures/frames.js'
import { sessionSlice, trainThrough } from '../../fixtures/training.js'

const close = (a: number[], b: number[]) => a.length === b.length && a.every((value, i) => Math.abs(value - b[i]) < 1e-6)

test('without a model: 503 with Retry-After naming the cause; no latest prediction yet (404)', async (t) => {
  const app = await buildTestApp(t)
  const [row] = sessionSlice(1)
  const single = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(row) } })
  assert.equal(single.statusCode, 503)
  assert.equal(single.headers['retry-after'], '1')
  assert.equal(single.json().code, 'DS_NO_MODEL')
  assert.match(single.json().message, /no model/)
  const batch = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames: [stringified(row)] } })
  assert.equal(batch.statusCode, 503)
  const latest = await app.inject({ method: 'GET', url: '/ml/get/inference_results' })
  assert.equal(latest.statusCode, 404)
  assert.match(latest.json().message, /no prediction yet/)
  const doors = await app.inject({ method: 'GET', url: '/ml/get/door_state' })
  assert.deepEqual(doors.json(), { doors: [] })
})

test('a full inference queue answers 503 with Retry-After', async (t) => {
  const app = await buildTestApp(t, { INFER_MAX_QUEUE: '2' })
  const frames = sessionSlice(1).slice(0, 3).map(stringified)
  const response = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames } })
  assert.equal(response.statusCode, 503)
  assert.equal(response.headers['retry-after'], '1')
  assert.equal(response.json().code, 'DS_OVERLOADED')
  assert.match(response.json().message, /3 frames exceed the inference queue of 2 frames/)
})

test('device routes need the device token when one is set', async (t) => {
  const app = await buildTestApp(t, { DEVICE_TOKEN: 'pi-token-123' })
  const [row] = sessionSlice(1)
  const response = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(row) } })
  assert.equal(response.statusCode, 401)
  const batch = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames: [stringified(row)] } })
  assert.equal(batch.statusCode, 401)
  const allowed = await app.inject({
    method: 'POST',
    url: '/ml/post/inference',
    headers: { authorization: 'Bearer pi-token-123' },
    payload: { payload: stringified(row) }
  })
  assert.equal(allowed.statusCode, 503, 'past the guard: no model yet')
})

test('with a trained model', async (t) => {
  const app = await buildTestApp(t, { STALE_AFTER_S: '1.5' })
  const version = await trainThrough(app)
  const rows = sessionSlice(3, 100)

  await t.test('legacy inference answers the stringified payload, the same frame as an array, and a raw Pi frame', async () => {
    const row = rows[0]
    const fromString = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(row) } })
    assert.equal(fromString.statusCode, 200, fromString.body)
    const result = fromString.json<InferenceResult>()
    assert.equal(result.version, version)
    assert.deepEqual(result.labels, [0, 15, 30, 45, 60, 75, 90])
    assert.equal(result.probabilities.length, 7)
    assert.ok(Math.abs(result.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4)
    assert.equal(result.angle, result.labels[result.probabilities.indexOf(Math.max(...result.probabilities))])
    assert.equal(result.state, result.angle === 0 ? 'closed' : 'open')
    assert.equal(result.confidence, Math.max(...result.probabilities))
    assert.equal(result.device, undefined)
    assert.ok(Math.abs(Date.parse(result.at) - Date.now()) < 60_000)
    // the model's own answer for this frame, without HTTP or batching
    const direct = app.model.predict([row.features]).predictions[0]
    assert.ok(close(result.probabilities, direct.probabilities))

    const fromArray = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: Array.from(row.features), ID: 12 } })
    assert.equal(fromArray.statusCode, 200)
    assert.ok(close(fromArray.json().probabilities, result.probabilities))
    assert.equal(fromArray.json().device, 12)

    const raw = rawPiFrames()[0]
    const fromRaw = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: JSON.stringify(raw) } })
    assert.equal(fromRaw.statusCode, 200)
    assert.ok(close(fromRaw.json().probabilities, app.model.predict([parseFrame(raw)]).predictions[0].probabilities))
  })

  await t.test('legacy inference: 400 naming what is wrong with the frame', async () => {
    const short = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: `[${Array(104).fill(1).join(',')}]` } })
    assert.equal(short.statusCode, 400)
    assert.equal(short.json().code, 'DS_BAD_FRAME')
    assert.match(short.json().message, /^payload: frame must hold 106 features.*got 104$/)
    const text = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: '[1, 2, x]' } })
    assert.equal(text.statusCode, 400)
    assert.match(text.json().message, /payload: frame value 2 is not a finite number \(got "x"\)/)
    const missing = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { ID: 3 } })
    assert.equal(missing.statusCode, 400)
    assert.match(missing.json().message, /payload/)
    const badId = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(rows[0]), ID: 40000 } })
    assert.equal(badId.statusCode, 400)
    assert.match(badId.json().message, /ID/)
  })

  await t.test('the latest prediction is served by GET /ml/get/inference_results', async () => {
    const posted = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { payload: stringified(rows[5]), ID: 4 } })
    const latest = await app.inject({ method: 'GET', url: '/ml/get/inference_results' })
    assert.equal(latest.statusCode, 200)
    assert.deepEqual(latest.json(), posted.json())
  })

  await t.test('batch: mixed good and bad frames in every encoding; one result per frame, bad ones with their reason', async () => {
    const raw = rawPiFrames()[1]
    const line = esp32Lines()[0]
    const frames: unknown[] = [stringified(rows[0]), Array.from(rows[1].features).slice(0, 100), raw, 'garbage', line, 7, Array.from(rows[2].features)]
    const response = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 21, frames } })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<BatchResponse>()
    assert.equal(body.version, version)
    assert.equal(body.device, 21)
    assert.equal(body.accepted, 4)
    assert.equal(body.rejected, 3)
    assert.equal(body.captured, 0, 'no capture session is open')
    assert.equal(body.results.length, frames.length)
    assert.match(body.results[1].error ?? '', /^frame 1: frame must hold 106 features.*got 100$/)
    assert.match(body.results[3].error ?? '', /^frame 3: /)
    assert.match(body.results[5].error ?? '', /^frame 5: frame must be an array of numbers or a string, got number/)
    const good = [0, 2, 4, 6]
    const expected = app.model.predict([rows[0].features, parseFrame(raw), parseFrame(line), rows[2].features]).predictions
    good.forEach((index, k) => {
      const result = body.results[index]
      assert.equal(result.error, undefined)
      assert.equal(result.angle, expected[k].angle)
      assert.equal(result.state, expected[k].state)
      assert.ok(close(result.probabilities ?? [], expected[k].probabilities), `frame ${index}`)
    })
  })

  await t.test('batch: 400 when no frame can be read, or for more than 4096 frames', async () => {
    const none = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames: ['x', [1, 2]] } })
    assert.equal(none.statusCode, 400)
    assert.match(none.json().message, /none of the 2 frames could be read; frame 0: /)
    const tooMany = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames: Array(4097).fill('[1]') } })
    assert.equal(tooMany.statusCode, 400)
    assert.match(tooMany.json().message, /frames/)
    const empty = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames: [] } })
    assert.equal(empty.statusCode, 400)
  })

  await t.test('door state: the server\'s smoother over the device\'s predictions; unknown after STALE_AFTER_S of silence', async () => {
    const frames = sessionSlice(10, 200).map((row) => Array.from(row.features))
    const response = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { ID: 77, frames } })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<BatchResponse>()
    // the same smoother, fed the same answers, must report the same door
    const smoother = new DoorSmoother({ window: app.config.DOOR_WINDOW, hold: app.config.DOOR_HOLD })
    for (const result of body.results) smoother.push(result.probabilities ?? [], body.labels, 0)
    const listed = (await app.inject({ method: 'GET', url: '/ml/get/door_state' })).json<DoorStateList>()
    const door = listed.doors.find((entry) => entry.device === 77)
    assert.ok(door, 'device 77 is listed')
    assert.equal(door.state, smoother.door.state)
    assert.equal(door.angle, smoother.door.angle)
    assert.ok(Math.abs(door.confidence - smoother.door.confidence) < 1e-9)
    assert.notEqual(door.state, 'unknown', `${frames.length} frames are more than DOOR_HOLD`)
    assert.ok(door.lastFrameAt && Date.parse(door.lastFrameAt) >= Date.parse(door.since))
    assert.deepEqual(listed.doors.map((entry) => entry.device), [...listed.doors.map((entry) => entry.device)].sort((a, b) => a - b))

    await sleep(app.config.STALE_AFTER_S * 1000 * 1.5)
    const later = (await app.inject({ method: 'GET', url: '/ml/get/door_state' })).json<DoorStateList>()
    const stale = later.doors.find((entry) => entry.device === 77)
    assert.equal(stale?.state, 'unknown')
    assert.equal(stale?.angle, null)
    assert.equal(stale?.lastFrameAt, door.lastFrameAt)
  })

  await t.test('concurrent requests each get their own answer: one model call each on the pure-JS backend, shared calls with INFER_GATHER=always', async () => {
    const batchStats = async (server: typeof app) => {
      const metrics = (await server.inject({ method: 'GET', url: '/metrics' })).body
      return {
        count: Number(/doorsense_inference_batch_frames_count (\d+)/.exec(metrics)?.[1]),
        frames: Number(/doorsense_inference_batch_frames_sum (\d+)/.exec(metrics)?.[1])
      }
    }
    const slice = sessionSlice(20, 300)
    const expected = app.model.predict(slice.map((row) => row.features)).predictions
    // the same trained model, served a second time with gathering forced
    const gathering = await buildTestApp(t, { INFER_GATHER: 'always' }, { dataDir: app.config.DATA_DIR })
    try {
      for (const [server, gathers] of [[app, false], [gathering, true]] as const) {
        const before = await batchStats(server)
        const responses = await Promise.all(slice.map((row) => server.inject({
          method: 'POST',
          url: '/ml/post/inference',
          payload: { payload: stringified(row) }
        })))
        responses.forEach((response, i) => {
          assert.equal(response.statusCode, 200, response.body)
          assert.ok(close(response.json().probabilities, expected[i].probabilities), `request ${i}`)
        })
        const after = await batchStats(server)
        assert.equal(after.frames - before.frames, slice.length)
        const calls = after.count - before.count
        if (gathers) assert.ok(calls < slice.length, `${slice.length} requests took ${calls} model calls: they were gathered`)
        else assert.equal(calls, slice.length, 'each request classified at once, in its own call')
      }
    } finally {
      await gathering.close()
    }
  })

  await t.test('batch: 4096 frames in one request, answered in order', async () => {
    const slice = sessionSlice(400)
    const frames = Array.from({ length: 4096 }, (_, i) => Array.from(slice[i % slice.length].features))
    const response = await app.inject({ method: 'POST', url: '/ml/post/batch', payload: { frames } })
    assert.equal(response.statusCode, 200)
    const body = response.json<BatchResponse>()
    assert.equal(body.accepted, 4096)
    const expected = app.model.predict(slice.slice(0, 50).map((row) => row.features)).predictions
    for (let i = 0; i < 50; i++) assert.ok(close(body.results[i].probabilities ?? [], expected[i].probabilities))
  })
})

test('one rule for frames on every route: 106 numeric strings are refused by /ml/post/inference as by /server/post/frames', async (t) => {
  const app = await buildTestApp(t)
  const strings = Array.from(sessionSlice(1)[0].features, (value) => String(value))
  const single = await app.inject({ method: 'POST', url: '/ml/post/inference', payload: { ID: 1, payload: strings } })
  const frames = await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 1, frames: [strings] } })
  assert.equal(single.statusCode, 400, single.body)
  assert.equal(frames.statusCode, 400, frames.body)
  assert.match(single.json().message, /^payload: frame value 0 is not a finite number \(got "/)
  assert.match(frames.json().message, /frames\[0\]: frame value 0 is not a finite number \(got "/)
})
