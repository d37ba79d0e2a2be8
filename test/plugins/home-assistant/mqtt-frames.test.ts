import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Counter, Registry } from 'prom-client'
import { BadFrameError, OverloadedError } from '../../../core/errors.js'
import { parseFrame, parseFrameWithEncoding } from '../../../domain/frames.js'
import { brokerAddress } from '../../../plugins/home-assistant/index.js'
import {
  binaryFramesOfPayload, framesOfPayload, FramesPayloadError, MqttFrameIntake, type PayloadRefusalReason
} from '../../../plugins/home-assistant/mqtt-frames.js'
import { RefusalLog, type RefusalReason } from '../../../plugins/home-assistant/refusals.js'
import { decodeBatch, decodedBatch } from '../../../plugins/rpi-servers/ingest.js'
import { binaryBatch, esp32Lines, rawPiLines } from '../../fixtures/frames.js'

const RPI_LINES = rawPiLines()
const CSI_LINES = esp32Lines()
const FEATURES = Array.from({ length: 106 }, (_, i) => (i < 53 ? 10 + i : 0.01 * i))
const LIMIT = 1 << 20

/** The payload's frames, decoded as the ingest decodes them. */
function decoded (payload: string): Float32Array[] {
  const { decoded: frames, rejected } = decodeBatch(framesOfPayload(payload, LIMIT))
  assert.deepEqual(rejected, [])
  return frames.map((frame) => frame.features)
}

test('a payload is one frame in any accepted encoding', () => {
  for (const [what, payload, expected] of [
    ['106 features as a JSON array', JSON.stringify(FEATURES), FEATURES],
    ['the original\'s stringified list, as it is', `[${FEATURES.join(', ')}]`, FEATURES],
    ['the original\'s stringified list, as a JSON string', JSON.stringify(`[${FEATURES.join(', ')}]`), FEATURES],
    ['a raw Pi line (108 integers)', RPI_LINES[0], RPI_LINES[0]],
    ['a raw ESP32 CSI_DATA line', CSI_LINES[0], CSI_LINES[0]],
    ['a CSI_DATA line with a trailing newline', `${CSI_LINES[1]}\n`, CSI_LINES[1]]
  ] as const) {
    const frames = decoded(payload)
    assert.equal(frames.length, 1, what)
    assert.deepEqual(frames[0], parseFrame(expected), what)
  }
})

test('a payload is a JSON array of frames, or frames one per line', () => {
  const mixed = JSON.stringify([FEATURES, RPI_LINES[0], JSON.parse(RPI_LINES[1]), CSI_LINES[0], `[${FEATURES.join(' ')}]`])
  assert.deepEqual(decoded(mixed), [parseFrame(FEATURES), parseFrame(RPI_LINES[0]), parseFrame(RPI_LINES[1]), parseFrame(CSI_LINES[0]), parseFrame(FEATURES)])
  assert.equal(decoded(CSI_LINES.join('\n')).length, CSI_LINES.length)
  assert.equal(decoded(RPI_LINES.slice(0, 20).join('\r\n') + '\r\n\r\n').length, 20, 'CRLF and empty lines')
  assert.equal(decoded(`\n${RPI_LINES[0]}\n\n${CSI_LINES[0]}\n`).length, 2, 'raw Pi and ESP32 lines mixed')
  assert.equal(decoded(JSON.stringify([FEATURES, FEATURES], null, 2)).length, 2, 'a pretty-printed array is still one JSON array')
})

test('a payload that is no frame, too large or too many frames is refused with a reason', () => {
  const refused = (payload: string, maxBytes = LIMIT, maxFrames?: number): PayloadRefusalReason => {
    try {
      framesOfPayload(payload, maxBytes, maxFrames)
    } catch (error) {
      assert.ok(error instanceof FramesPayloadError)
      return error.reason
    }
    assert.fail(`${payload.slice(0, 40)} was not refused`)
  }
  for (const payload of ['', '  \n\n ', '[]', '{"ID":7,"frames":[]}']) assert.equal(refused(payload), 'undecodable', JSON.stringify(payload))
  assert.equal(refused(JSON.stringify(FEATURES), 100), 'too_large')
  assert.equal(refused('é'.repeat(2000), 3000), 'too_large', 'bytes, not characters')
  assert.equal(refused('1\n'.repeat(4097)), 'too_many', 'the most frames one HTTP batch may hold')
  assert.equal(refused(JSON.stringify([FEATURES, FEATURES, FEATURES]), LIMIT, 2), 'too_many')
  // not refused here: the decoder judges each frame (and the ingest refuses the payload when none decodes)
  assert.deepEqual(framesOfPayload('garbage', LIMIT), ['garbage'])
  assert.deepEqual(framesOfPayload('[1,2,3]', LIMIT), [[1, 2, 3]])
  assert.deepEqual(framesOfPayload('42', LIMIT), ['42'])
  assert.deepEqual(framesOfPayload('[1,[2]]', LIMIT), [[1, [2]]], 'an array with a number in it is one frame')
})

test('a binary payload is raw frames of its topic\'s layout back to back, decoded as the same frames as text', () => {
  assert.deepEqual(binaryFramesOfPayload(binaryBatch(RPI_LINES), 'pi108', LIMIT), RPI_LINES.map((line) => parseFrameWithEncoding(line)))
  assert.deepEqual(binaryFramesOfPayload(binaryBatch(CSI_LINES), 'esp128', LIMIT), CSI_LINES.map((line) => parseFrameWithEncoding(line)))
  const refused = (run: () => unknown): [PayloadRefusalReason, string] => {
    try {
      run()
    } catch (error) {
      assert.ok(error instanceof FramesPayloadError)
      return [error.reason, error.message]
    }
    assert.fail('not refused')
  }
  assert.deepEqual(refused(() => binaryFramesOfPayload(binaryBatch(RPI_LINES.slice(0, 3)), 'esp128', LIMIT)),
    ['undecodable', 'payload of 324 bytes is 2 esp128 frames of 128 bytes and 68 bytes over'])
  assert.deepEqual(refused(() => binaryFramesOfPayload(Buffer.alloc(0), 'pi108', LIMIT)),
    ['undecodable', 'payload is empty: a pi108 batch is 1 or more frames of 108 bytes'])
  assert.deepEqual(refused(() => binaryFramesOfPayload(binaryBatch(RPI_LINES), 'pi108', 1000)),
    ['too_large', 'payload of 34452 bytes is larger than the 1000 allowed (BODY_LIMIT)'])
  assert.deepEqual(refused(() => binaryFramesOfPayload(binaryBatch(RPI_LINES), 'pi108', LIMIT, 100)),
    ['too_many', 'payload holds 319 pi108 frames, more than the 100 of one batch'])
})

test('the intake hands the frames to the ingest and never throws: each refusal goes to the sink with its reason and device', () => {
  let overloaded = false
  const refusals: Array<[RefusalReason, number | undefined]> = []
  const intake = new MqttFrameIntake({
    ingest: (device, frames) => {
      if (overloaded) throw new OverloadedError('inference queue is full (16384 frames waiting): retry later')
      if (device === 13) throw new Error('database is closed')
      const { decoded: good, rejected } = decodedBatch(frames)
      if (good.length === 0) throw new BadFrameError('the only frame was rejected, nothing stored')
      return { accepted: good.length, rejected, labelled: 0 }
    },
    maxBytes: 4096,
    refusals: { refuse: (reason, detail) => refusals.push([reason, detail.device]) }
  })
  assert.deepEqual(intake.handle(7, Buffer.from(CSI_LINES.slice(0, 3).join('\n'))), { accepted: 3, rejected: [], labelled: 0 })
  assert.equal(intake.handle(7, Buffer.from('garbage')), undefined)
  assert.equal(intake.handle(7, Buffer.alloc(5000, '1')), undefined)
  overloaded = true
  assert.equal(intake.handle(8, Buffer.from(RPI_LINES[0])), undefined)
  overloaded = false
  assert.equal(intake.handle(13, Buffer.from(RPI_LINES[0])), undefined)
  // binary: decoded frames, every one readable; a payload of bytes over is refused whole
  assert.deepEqual(intake.handle(7, binaryBatch(RPI_LINES.slice(0, 5)), 'pi108'), { accepted: 5, rejected: [], labelled: 0 })
  assert.equal(intake.handle(7, binaryBatch(RPI_LINES.slice(0, 5)).subarray(1), 'pi108'), undefined)
  assert.deepEqual(refusals, [['undecodable', 7], ['too_large', 7], ['overloaded', 8], ['failed', 13], ['undecodable', 7]])
})

test('5,000 devices and 5,000 junk topics refused: two log lines (the first, then a summary) and one counter series per reason', async () => {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const registry = new Registry()
  const counter = new Counter({ name: 'refused_total', help: 'refused', labelNames: ['reason'] as const, registers: [registry] })
  const refusals = new RefusalLog({
    log: { warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) },
    onRefused: (reason) => counter.inc({ reason }),
    logEveryMs: 100
  })
  const intake = new MqttFrameIntake({
    ingest: () => { throw new BadFrameError('the only frame was rejected, nothing stored: frame is empty') },
    maxBytes: 4096,
    refusals
  })
  for (let device = 100; device < 5100; device++) intake.handle(device, Buffer.from('junk'))
  for (let i = 0; i < 5000; i++) refusals.refuse('topic', { topic: `doorsense/frames/junk-${i}` })
  assert.equal(lines.length, 1, 'the first refusal is logged at once, the rest wait for the summary')
  assert.deepEqual(lines[0]?.obj, { reason: 'undecodable', device: 100, error: 'the only frame was rejected, nothing stored: frame is empty' })
  await sleep(250)
  assert.equal(lines.length, 2)
  assert.deepEqual(lines[1]?.obj.refused, { undecodable: 4999, topic: 5000 })
  assert.equal(lines[1]?.obj.total, 9999)
  assert.equal(lines[1]?.obj.devices, 4999)
  assert.match(lines[1]?.msg ?? '', /refused.*summary/)
  // a quiet interval logs nothing; the next refusal is logged at once again
  await sleep(150)
  assert.equal(lines.length, 2)
  refusals.refuse('retained', { device: 7, topic: 'doorsense/frames/7' })
  assert.equal(lines.length, 3)
  refusals.close()
  const series = (await registry.metrics()).split('\n').filter((line) => line.startsWith('refused_total{'))
  assert.deepEqual(series, ['refused_total{reason="undecodable"} 5000', 'refused_total{reason="topic"} 5000', 'refused_total{reason="retained"} 1'])
})

test('a refusal log logs what it counted when closed, and quotes at most 200 characters of a topic', () => {
  const lines: Array<Record<string, unknown>> = []
  const refusals = new RefusalLog({ log: { warn: (obj) => lines.push(obj as Record<string, unknown>) } })
  refusals.refuse('topic', { topic: `doorsense/frames/${'x'.repeat(70_000)}` })
  refusals.refuse('too_many', { device: 3 })
  refusals.close()
  assert.equal(lines.length, 2)
  assert.equal(String(lines[0]?.topic).length, 200)
  assert.deepEqual(lines[1]?.refused, { too_many: 1 })
  refusals.refuse('too_many', { device: 3 })
  assert.equal(lines.length, 2, 'nothing is logged after close')
})

test('a counter or a sink that throws does not make the intake throw', () => {
  const counted = new MqttFrameIntake({
    ingest: () => { throw new BadFrameError('bad') },
    maxBytes: 100,
    refusals: new RefusalLog({ log: { warn: () => {} }, onRefused: () => { throw new Error('counter broke') } })
  })
  assert.doesNotThrow(() => counted.handle(1, Buffer.from('x')))
  const sunk = new MqttFrameIntake({
    ingest: () => { throw new BadFrameError('bad') },
    maxBytes: 100,
    refusals: { refuse: () => { throw new Error('sink broke') } }
  })
  assert.doesNotThrow(() => sunk.handle(1, Buffer.from('x')))
})

test('brokerAddress: scheme, host and port, never the credentials', () => {
  assert.equal(brokerAddress('mqtt://user:secret@broker.lan:1884'), 'mqtt://broker.lan:1884')
  assert.equal(brokerAddress('mqtt://broker.lan'), 'mqtt://broker.lan:1883')
  assert.equal(brokerAddress('mqtts://user:p%40ss@broker.example'), 'mqtts://broker.example:8883')
  assert.equal(brokerAddress('mqtt://[::1]:1883'), 'mqtt://[::1]:1883')
  assert.doesNotMatch(brokerAddress('mqtt://user:secret@host:99999'), /secret/)
})
