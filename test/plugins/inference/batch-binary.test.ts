/**
 * The same recorded frames as JSON and as a binary batch get the same
 * answers from a trained model: POST /ml/post/batch answers byte for byte,
 * and a door fed through POST /server/post/frames goes through the same
 * states.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { App } from '../../../core/app.js'
import type { Door } from '../../../schemas/doors.js'
import type { BatchResponse } from '../../../schemas/inference.js'
import { buildTestApp } from '../../helper.js'
import { trainThrough } from '../../fixtures/training.js'
import { binaryBatch, esp32Lines as recordedEsp32Lines, rawPiLines } from '../../fixtures/frames.js'

const piLines = rawPiLines()
const esp32Lines = recordedEsp32Lines()
const OCTETS = { 'content-type': 'application/octet-stream' }

const batchJson = (app: App, body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/ml/post/batch', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) })
const batchBinary = (app: App, query: string, body: Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/ml/post/batch${query}`, headers: { ...OCTETS, ...headers }, payload: body })

test('with a trained model, binary and JSON batches of the same frames get the same answers', async (t) => {
  const app = await buildTestApp(t)
  await trainThrough(app, 40)

  await t.test('/ml/post/batch answers byte for byte: 319 raw Pi frames, 13 ESP32 lines, with and without a device', async () => {
    for (const [what, lines, layout] of [['pi108', piLines, 'pi108'], ['esp128', esp32Lines, 'esp128']] as const) {
      const json = await batchJson(app, { ID: 5, frames: lines })
      assert.equal(json.statusCode, 200, json.body)
      const binary = await batchBinary(app, `?ID=5&layout=${layout}`, binaryBatch(lines))
      assert.equal(binary.statusCode, 200, binary.body)
      assert.equal(binary.body, json.body, what)
      const answer = binary.json<BatchResponse>()
      assert.deepEqual([answer.device, answer.accepted, answer.rejected, answer.results.length], [5, lines.length, 0, lines.length])
      // without an ID, as a JSON batch may be sent
      const anonymous = await batchBinary(app, `?layout=${layout}`, binaryBatch(lines))
      assert.equal(anonymous.body, (await batchJson(app, { frames: lines })).body, `${what} without a device`)
      assert.equal(anonymous.json<BatchResponse>().device, undefined)
    }
    // the answers tell the frames apart: not one answer for all
    const results = (await batchBinary(app, '?layout=pi108', binaryBatch(piLines))).json<BatchResponse>().results
    assert.ok(new Set(results.map((result) => result.confidence)).size > 10)
  })

  await t.test('/ml/post/batch: a bad binary body is a 400 naming it; a binary retry replays, the same key with the frames as JSON is a 422', async () => {
    const over = await batchBinary(app, '?ID=5&layout=esp128', Buffer.alloc(300))
    assert.equal(over.statusCode, 400)
    assert.equal(over.json().message, 'body of 300 bytes is 2 esp128 frames of 128 bytes and 44 bytes over')
    const noLayout = await batchBinary(app, '?ID=5', binaryBatch(piLines.slice(0, 3)))
    assert.equal(noLayout.statusCode, 400)
    assert.match(noLayout.json().message, /needs its layout: \?layout=pi108 or esp128/)
    const withQuery = await app.inject({ method: 'POST', url: '/ml/post/batch?layout=pi108', payload: { frames: piLines.slice(0, 3) } })
    assert.equal(withQuery.statusCode, 400)
    assert.match(withQuery.json().message, /^\?layout= is for an application\/octet-stream body only/)

    const key = { 'idempotency-key': 'ml-batch-1' }
    const body = binaryBatch(piLines.slice(0, 50))
    const first = await batchBinary(app, '?ID=6&layout=pi108', body, key)
    assert.equal(first.statusCode, 200, first.body)
    const retry = await batchBinary(app, '?ID=6&layout=pi108', body, key)
    assert.equal(retry.headers['idempotent-replayed'], 'true')
    assert.equal(retry.body, first.body)
    const asJson = await batchJson(app, { ID: 6, frames: piLines.slice(0, 50) }, key)
    assert.equal(asJson.statusCode, 422)
    assert.equal(asJson.json().code, 'DS_IDEMPOTENCY_KEY_REUSED')
  })

  await t.test('a door fed binary batches goes through the same states as one fed the same frames as JSON', async () => {
    const door = async (device: number) => {
      const { device: _device, since: _since, lastFrameAt, frameRate: _rate, ...rest } = (await app.inject({ url: `/doors/${device}` })).json<Door>()
      assert.notEqual(lastFrameAt, null)
      return rest
    }
    const seen: Array<Omit<Door, 'device' | 'since' | 'lastFrameAt' | 'frameRate'>> = []
    for (let i = 0; i < piLines.length; i += 20) {
      const part = piLines.slice(i, i + 20)
      assert.equal((await app.inject({ method: 'POST', url: '/server/post/frames', payload: { ID: 21, frames: part } })).statusCode, 200)
      const binary = await app.inject({ method: 'POST', url: '/server/post/frames?ID=22&layout=pi108', headers: OCTETS, payload: binaryBatch(part) })
      assert.equal(binary.statusCode, 200, binary.body)
      const [fromJson, fromBinary] = [await door(21), await door(22)]
      assert.deepEqual(fromBinary, fromJson, `after frame ${i + part.length}`)
      seen.push(fromBinary)
    }
    assert.ok(seen.some((state) => state.state !== 'unknown'), 'the model read the door')
    type LegacyDoor = { device: number, state: string, angle: number | null, confidence: number }
    const legacy = (await app.inject({ url: '/ml/get/door_state' })).json<{ doors: LegacyDoor[] }>()
    const [a, b] = [21, 22].map((device) => legacy.doors.find((entry) => entry.device === device))
    assert.deepEqual([b?.state, b?.angle, b?.confidence], [a?.state, a?.angle, a?.confidence])
  })
})
