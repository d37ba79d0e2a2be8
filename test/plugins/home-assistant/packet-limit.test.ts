import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { IncomingPacketLimit, PacketTooLargeError, type SkippedPacket } from '../../../plugins/home-assistant/packet-limit.js'
import { remainingLength } from './raw-publisher.js'

/** One MQTT packet: its first byte (type and flags), then the remaining length as MQTT encodes it, then `body` bytes. */
function packet (first: number, body: number): Buffer {
  const length = remainingLength(body)
  const bytes = Buffer.alloc(1 + length.length + body, 0x61)
  bytes[0] = first
  length.copy(bytes, 1)
  return bytes
}

const PUBLISH_QOS0 = 0x30
const PUBLISH_QOS0_RETAINED = 0x31
const PUBLISH_QOS1 = 0x32
const PUBACK = 0x40
const SUBACK = 0x90

/** Feeds `stream` to a limit of `maxBytes` cut at `cuts` (positions), returns what passed and what was skipped. */
function run (maxBytes: number, stream: Buffer, cuts: number[]): { passed: Buffer, skipped: SkippedPacket[] } {
  const skipped: SkippedPacket[] = []
  const limit = new IncomingPacketLimit(maxBytes, (packet) => skipped.push(packet))
  const kept: Buffer[] = []
  let from = 0
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b).concat(stream.length)) {
    kept.push(limit.filter(stream.subarray(from, cut)))
    from = cut
  }
  return { passed: Buffer.concat(kept), skipped }
}

test('packets within the limit pass unchanged, larger QoS 0 publishes are skipped, however the stream is cut', () => {
  const kinds = [PUBLISH_QOS0, PUBLISH_QOS0_RETAINED, PUBACK, SUBACK]
  fc.assert(fc.property(
    // bodies around the 1- and 2-byte length boundaries, and the limit between them
    fc.array(fc.record({
      first: fc.constantFrom(...kinds),
      body: fc.oneof(fc.integer({ min: 0, max: 130 }), fc.integer({ min: 16_370, max: 16_400 }))
    }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 5, max: 16_500 }),
    fc.array(fc.nat(), { maxLength: 20 }),
    (drawn, maxBytes, rawCuts) => {
      // only publishes at QoS 0 may be over the limit (anything else would be an error)
      const packets = drawn.map(({ first, body }) => packet(first, first === PUBACK || first === SUBACK ? Math.min(body, maxBytes - 5) : body))
      const stream = Buffer.concat(packets)
      const { passed, skipped } = run(maxBytes, stream, rawCuts.map((cut) => cut % (stream.length + 1)))
      assert.deepEqual(passed, Buffer.concat(packets.filter((bytes) => bytes.length <= maxBytes)))
      assert.deepEqual(skipped, packets.filter((bytes) => bytes.length > maxBytes)
        .map((bytes) => ({ bytes: bytes.length, retain: bytes[0] === PUBLISH_QOS0_RETAINED })))
    }
  ), { seed: 20, numRuns: 300 })
})

test('a 100 MB publish fed in 64 KiB pieces is skipped: nothing of it passes, the packets around it do', () => {
  const skipped: SkippedPacket[] = []
  const limit = new IncomingPacketLimit(1024, (packet) => skipped.push(packet))
  const before = packet(PUBLISH_QOS0, 10)
  const after = packet(PUBACK, 2)
  const header = packet(PUBLISH_QOS0, 100 * 1024 * 1024).subarray(0, 5)
  const passed: Buffer[] = [limit.filter(Buffer.concat([before, header]))]
  const piece = Buffer.alloc(64 * 1024, 0x62)
  for (let left = 100 * 1024 * 1024; left > 0; left -= piece.length) passed.push(limit.filter(piece))
  passed.push(limit.filter(after))
  assert.deepEqual(Buffer.concat(passed), Buffer.concat([before, after]))
  assert.deepEqual(skipped, [{ bytes: 5 + 100 * 1024 * 1024, retain: false }])
})

test('an oversized packet that cannot be skipped (QoS 1 publish, any other type) or a malformed length is an error', () => {
  for (const first of [PUBLISH_QOS1, SUBACK]) {
    const limit = new IncomingPacketLimit(100, () => {})
    assert.throws(() => limit.filter(packet(first, 200)), (error: unknown) => error instanceof PacketTooLargeError && error.code === 'DS_MQTT_PACKET_TOO_LARGE')
  }
  assert.throws(() => new IncomingPacketLimit(100, () => {}).filter(Buffer.from([PUBACK, 0xff, 0xff, 0xff, 0xff, 0x01])), PacketTooLargeError)
})
