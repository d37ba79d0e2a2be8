/**
 * Binary batches (domain/frames.ts decodeBinaryFrames, encodeBinaryFrames):
 * the recorded frames as int8 bytes decode to exactly the features their
 * text decodes to, and a body that is not whole frames is refused naming
 * the count and the remainder.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  BINARY_LAYOUTS, binaryFrameCount, decodeBinaryFrames, encodeBinaryFrames, FrameError, isBinaryLayout, parseFrameWithEncoding,
  RAW_ESP32_VALUES, RAW_PI_VALUES
} from '../../domain/frames.js'
import { FRAME_LAYOUT_BYTES } from '../../schemas/rpi-servers.js'
import { esp32Lines as recordedEsp32Lines, rawPiLines } from '../fixtures/frames.js'

const piLines = rawPiLines()
const esp32Lines = recordedEsp32Lines()

/** The bracketed ints of an ESP32-CSI-Tool line, read independently of the parser. */
function esp32Values (line: string): number[] {
  return line.slice(line.indexOf('[') + 1, line.lastIndexOf(']')).trim().split(/\s+/).map(Number)
}

/** Values as int8 bytes, written independently of the encoder (two's complement by hand). */
function int8Bytes (frames: readonly number[][]): Buffer {
  return Buffer.from(frames.flat().map((value) => (value < 0 ? 256 + value : value)))
}

function assertFrameError (run: () => unknown, message: string): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof FrameError, `expected a FrameError, got ${String(err)}`)
    assert.equal(err.message, message)
    return true
  })
}

test('the layouts are the raw frames\' sizes, as the routes\' schemas list them', () => {
  assert.deepEqual(BINARY_LAYOUTS, { pi108: { bytes: RAW_PI_VALUES, encoding: 'raw-pi' }, esp128: { bytes: RAW_ESP32_VALUES, encoding: 'raw-esp32' } })
  assert.deepEqual(FRAME_LAYOUT_BYTES, { pi108: 108, esp128: 128 })
  assert.deepEqual(Object.keys(BINARY_LAYOUTS), Object.keys(FRAME_LAYOUT_BYTES), 'in the same order')
  assert.ok(isBinaryLayout('pi108') && isBinaryLayout('esp128'))
  for (const other of ['PI108', 'raw', 'toString', '__proto__', 108, undefined]) assert.equal(isBinaryLayout(other), false, String(other))
})

test('the 319 raw Pi frames as one pi108 batch decode to exactly the features of their text, in order', () => {
  const values = piLines.map((line) => JSON.parse(line) as number[])
  const decoded = decodeBinaryFrames(int8Bytes(values), 'pi108')
  assert.equal(decoded.length, 319)
  for (const [i, line] of piLines.entries()) assert.deepEqual(decoded[i], parseFrameWithEncoding(line), `frame ${i}`)
  // the recordings hold negative parts: the bytes are read signed
  assert.ok(values.flat().some((value) => value < 0))
})

test('the 13 ESP32-CSI-Tool lines as one esp128 batch decode to exactly the features of the lines', () => {
  const decoded = decodeBinaryFrames(int8Bytes(esp32Lines.map(esp32Values)), 'esp128')
  assert.equal(decoded.length, 13)
  for (const [i, line] of esp32Lines.entries()) {
    assert.deepEqual(decoded[i], parseFrameWithEncoding(line), `line ${i}`)
    assert.equal(decoded[i]?.encoding, 'raw-esp32')
  }
})

test('every int8 value decodes as its text does, the extremes included; a view into a larger buffer is read at its offset', () => {
  // a frame using each of the 256 byte values (pairs (v, 127 - v) sweep -128..127)
  const extremes = Array.from({ length: RAW_ESP32_VALUES }, (_, i) => (i % 2 === 0 ? -128 + i : 127 - i))
  const [frame] = decodeBinaryFrames(int8Bytes([extremes]), 'esp128')
  assert.deepEqual(frame, parseFrameWithEncoding(extremes))
  const padded = Buffer.concat([Buffer.from([1, 2, 3]), int8Bytes([JSON.parse(piLines[5]) as number[]]), Buffer.from([9])])
  const [fromView] = decodeBinaryFrames(padded.subarray(3, 3 + RAW_PI_VALUES), 'pi108')
  assert.deepEqual(fromView, parseFrameWithEncoding(piLines[5]))
})

test('a body that is not whole frames is refused naming the frames and the bytes over; an empty one too', () => {
  assertFrameError(() => decodeBinaryFrames(new Uint8Array(1000), 'pi108'), 'body of 1000 bytes is 9 pi108 frames of 108 bytes and 28 bytes over')
  assertFrameError(() => decodeBinaryFrames(new Uint8Array(129), 'esp128'), 'body of 129 bytes is 1 esp128 frame of 128 bytes and 1 byte over')
  assertFrameError(() => decodeBinaryFrames(new Uint8Array(108), 'esp128'), 'body of 108 bytes is 0 esp128 frames of 128 bytes and 108 bytes over')
  assertFrameError(() => decodeBinaryFrames(new Uint8Array(0), 'pi108'), 'body is empty: a pi108 batch is 1 or more frames of 108 bytes')
  assertFrameError(() => binaryFrameCount(217, 'pi108', { what: 'payload' }), 'payload of 217 bytes is 2 pi108 frames of 108 bytes and 1 byte over')
  assert.equal(binaryFrameCount(108 * 4096, 'pi108', { maxFrames: 4096 }), 4096)
  assertFrameError(() => decodeBinaryFrames(new Uint8Array(108 * 4097), 'pi108', { maxFrames: 4096 }),
    'body of 442476 bytes holds 4097 pi108 frames, more than the 4096 of one batch')
})

test('encodeBinaryFrames: raw frames of one layout become their bytes; anything else stays text', () => {
  const pi = encodeBinaryFrames(piLines.slice(0, 20))
  assert.equal(pi?.layout, 'pi108')
  assert.deepEqual(pi?.bytes, new Uint8Array(int8Bytes(piLines.slice(0, 20).map((line) => JSON.parse(line) as number[]))))
  assert.deepEqual(decodeBinaryFrames(pi?.bytes ?? new Uint8Array(), 'pi108'), piLines.slice(0, 20).map((line) => parseFrameWithEncoding(line)))
  // CSI_DATA lines and bare 128-value arrays are both esp128
  const esp = encodeBinaryFrames([...esp32Lines, esp32Values(esp32Lines[0])])
  assert.equal(esp?.layout, 'esp128')
  assert.equal(esp?.bytes.length, 14 * 128)
  assert.deepEqual(decodeBinaryFrames(esp?.bytes ?? new Uint8Array(), 'esp128').map((frame) => frame.features),
    [...esp32Lines, esp32Lines[0]].map((line) => parseFrameWithEncoding(line).features))
  const features = Array.from(parseFrameWithEncoding(piLines[0]).features)
  for (const [what, frames] of [
    ['none', []],
    ['mixed layouts', [piLines[0], esp32Lines[0]]],
    ['106 features', [piLines[0], features]],
    ['a frame that does not decode', [piLines[0], 'garbage']],
    ['a value past int8', [piLines[0], JSON.stringify(Array(108).fill(128))]],
    ['a fraction', [Array(108).fill(0.5)]]
  ] as const) assert.equal(encodeBinaryFrames(frames), undefined, what)
})
