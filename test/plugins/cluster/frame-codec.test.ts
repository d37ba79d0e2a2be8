import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeFrameBatch, encodeFrameBatch, type FrameBatch } from '../../../plugins/cluster/frame-codec.js'
import { clusterNames, frameSubject, partitionFilter, partitionOf } from '../../../plugins/cluster/names.js'

function batch (device: number, frames: number, length: number): FrameBatch {
  return {
    device,
    receivedAt: 1_717_000_000_123.5,
    features: Array.from({ length: frames }, (_, frame) => Float32Array.from({ length }, (_, at) => frame * 1000 + at + 0.25))
  }
}

test('a batch round-trips: device, receivedAt to the fraction, every float32 in order', () => {
  const original = batch(32767, 3, 106)
  original.features[1][5] = Number.NaN
  original.features[2][0] = -Infinity
  const bytes = encodeFrameBatch(original)
  assert.equal(bytes.byteLength, 20 + 3 * 106 * 4, 'a 20-byte header and 4 bytes a feature, nothing more')
  const decoded = decodeFrameBatch(bytes)
  assert.equal(decoded.device, 32767)
  assert.equal(decoded.receivedAt, 1_717_000_000_123.5)
  assert.equal(decoded.features.length, 3)
  for (const [index, frame] of decoded.features.entries()) {
    assert.ok(frame instanceof Float32Array)
    assert.deepEqual([...frame], [...original.features[index]])
  }
})

test('decode copies out of an unaligned message buffer: the frames outlive it', () => {
  const bytes = encodeFrameBatch(batch(7, 2, 5))
  const shifted = new Uint8Array(bytes.byteLength + 3)
  shifted.set(bytes, 3)
  const decoded = decodeFrameBatch(shifted.subarray(3))
  shifted.fill(0)
  assert.equal(decoded.device, 7)
  assert.deepEqual([...decoded.features[1]], [1000.25, 1001.25, 1002.25, 1003.25, 1004.25])
  assert.equal(decoded.features[0].byteOffset % 4, 0)
})

test('encode refuses what it cannot write faithfully', () => {
  assert.throws(() => encodeFrameBatch(batch(32768, 1, 4)), /device 32768/)
  assert.throws(() => encodeFrameBatch(batch(-1, 1, 4)), /device -1/)
  assert.throws(() => encodeFrameBatch(batch(1.5, 1, 4)), /device 1.5/)
  assert.throws(() => encodeFrameBatch({ ...batch(1, 1, 4), receivedAt: Number.NaN }), /receivedAt/)
  assert.throws(() => encodeFrameBatch(batch(1, 0, 4)), /no frame/)
  assert.throws(() => encodeFrameBatch(batch(1, 2, 0)), /no feature/)
  assert.throws(() => encodeFrameBatch({ ...batch(1, 1, 4), features: [new Float32Array(4), new Float32Array(3)] }), /frame 1 has 3 features, frame 0 has 4/)
})

test('decode refuses another version, a truncated or overlong payload, a device out of range', () => {
  const bytes = encodeFrameBatch(batch(12, 2, 8))
  assert.throws(() => decodeFrameBatch(bytes.subarray(0, 10)), /shorter than the 20-byte header/)
  assert.throws(() => decodeFrameBatch(bytes.subarray(0, bytes.byteLength - 1)), /2 frames of 8 features need 84 bytes, the payload has 83/)
  assert.throws(() => decodeFrameBatch(Uint8Array.from([...bytes, 0, 0, 0, 0])), /the payload has 88/)
  const v2 = bytes.slice()
  v2[0] = 2
  assert.throws(() => decodeFrameBatch(v2), /version 2, this instance reads version 1/)
  const farDevice = bytes.slice()
  new DataView(farDevice.buffer).setUint16(2, 40000, true)
  assert.throws(() => decodeFrameBatch(farDevice), /device 40000/)
  const empty = bytes.slice(0, 20)
  new DataView(empty.buffer).setUint32(12, 0, true)
  assert.throws(() => decodeFrameBatch(empty), /0 frames/)
  assert.throws(() => decodeFrameBatch(new TextEncoder().encode(JSON.stringify({ ID: 1, frames: [[1, 2]] }))), /version 123/)
})

test('names: a cluster\'s stream, subjects and buckets; the default name gives doorsense_doors', () => {
  const names = clusterNames('doorsense')
  assert.deepEqual(names, {
    cluster: 'doorsense',
    frameStream: 'doorsense_frames',
    frameSubjects: 'doorsense.frames.*.*',
    doorsBucket: 'doorsense_doors',
    ownersBucket: 'doorsense_owners',
    instancesBucket: 'doorsense_instances',
    modelsBucket: 'doorsense_models',
    activeBucket: 'doorsense_active',
    locksBucket: 'doorsense_locks'
  })
  assert.equal(frameSubject(names, 3, 1203), 'doorsense.frames.3.1203')
  assert.equal(partitionFilter(names, 3), 'doorsense.frames.3.*')
  for (const bad of ['', 'a.b', 'a*', 'a>', 'a b', 'x'.repeat(33), 'é']) assert.throws(() => clusterNames(bad), /must match/, bad)
  assert.equal(clusterNames('site-2_b').ownersBucket, 'site-2_b_owners')
})

test('partitionOf is device % partitions, and refuses a device or a count out of range', () => {
  assert.equal(partitionOf(0, 8), 0)
  assert.equal(partitionOf(13, 8), 5)
  assert.equal(partitionOf(32767, 8), 7)
  assert.equal(partitionOf(32767, 1), 0)
  const counts = new Array(8).fill(0)
  for (let device = 0; device < 1000; device++) counts[partitionOf(device, 8)]++
  assert.deepEqual(counts, [125, 125, 125, 125, 125, 125, 125, 125])
  assert.throws(() => partitionOf(32768, 8), RangeError)
  assert.throws(() => partitionOf(-1, 8), RangeError)
  assert.throws(() => partitionOf(3, 0), RangeError)
  assert.throws(() => partitionOf(3, 2.5), RangeError)
})
