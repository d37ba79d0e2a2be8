import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  DC_INDEX, FEATURES, FEATURE_NAMES, FrameError, SUBCARRIERS, parseFrame, parseFrameWithEncoding
} from '../../domain/frames.js'
import { SESSION_A_CSV } from '../helper.js'
import { esp32Lines as recordedEsp32Lines, rawPiLines } from '../fixtures/frames.js'

const piLines = rawPiLines()
const esp32Lines = recordedEsp32Lines()
/** The first labelled row of session A: 106 features in the CSV's column order. */
const sessionRow = readFileSync(SESSION_A_CSV, 'utf8').split('\n')[1].split(',').slice(1).map(Number)

/** π rounded to float32 (a phase of exactly π is stored as this). */
const PI32 = Math.fround(Math.PI)
const magnitudes = (features: Float32Array) => features.subarray(0, SUBCARRIERS)
const phases = (features: Float32Array) => features.subarray(SUBCARRIERS)

/** The bracketed ints of an ESP32-CSI-Tool line, read independently of the parser. */
function esp32Values (line: string): number[] {
  return line.slice(line.indexOf('[') + 1, line.lastIndexOf(']')).trim().split(/\s+/).map(Number)
}

/** Asserts `run` throws a FrameError whose message matches `pattern`. */
function assertFrameError (run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof FrameError, `expected a FrameError, got ${String(err)}`)
    assert.match(err.message, pattern)
    return true
  })
}

test('the recordings hold what the tests assume', () => {
  assert.equal(piLines.length, 319)
  assert.equal(esp32Lines.length, 13)
  assert.equal(sessionRow.length, FEATURES)
  assert.deepEqual(FEATURE_NAMES.slice(0, 2), ['CH6_mag', 'CH7_mag'])
  assert.equal(FEATURE_NAMES[DC_INDEX], 'CH32_mag')
})

test('every raw Pi frame decodes: CH32 is 0, every other subcarrier carries signal, magnitudes 0..60, phases in [-π, π]', () => {
  for (const [lineNo, line] of piLines.entries()) {
    const values = JSON.parse(line) as number[]
    assert.equal(values.length, 108, `line ${lineNo + 1}`)
    // test/fixtures/csi/README.md's mapping: pair 0 unused, pair 27 the DC null
    assert.deepEqual([values[0], values[1], values[54], values[55]], [0, 0, 0, 0], `line ${lineNo + 1}`)
    const { features, encoding } = parseFrameWithEncoding(line)
    assert.equal(encoding, 'raw-pi')
    assert.equal(features.length, FEATURES)
    const mags = magnitudes(features)
    assert.equal(mags[DC_INDEX], 0, `line ${lineNo + 1}: CH32`)
    assert.equal(phases(features)[DC_INDEX], 0, `line ${lineNo + 1}: CH32 phase`)
    // a shift by one pair would put the unused pair 0 at CH6 or the null off CH32
    const silent = [...mags].flatMap((m, k) => (k !== DC_INDEX && m === 0 ? [FEATURE_NAMES[k]] : []))
    assert.deepEqual(silent, [], `line ${lineNo + 1}: subcarriers without signal`)
    for (const m of mags) assert.ok(m >= 0 && m <= 60, `line ${lineNo + 1}: magnitude ${m}`)
    for (const p of phases(features)) assert.ok(p >= -PI32 && p <= PI32, `line ${lineNo + 1}: phase ${p}`)
  }
})

test('a raw Pi subcarrier computed by hand: line 1, pair 1 = (im 22, re 3) is CH6', () => {
  assert.ok(piLines[0].startsWith('[0,0,22,3,'))
  const features = parseFrame(piLines[0])
  assert.ok(Math.abs(features[0] - Math.sqrt(22 * 22 + 3 * 3)) < 1e-5, `CH6_mag ${features[0]}`)
  assert.ok(Math.abs(features[SUBCARRIERS] - Math.atan2(22, 3)) < 1e-6, `CH6_phase ${features[SUBCARRIERS]}`)
  // the last pair (53) is CH58: (5, -3) on line 1
  assert.ok(piLines[0].endsWith(',5,-3]'))
  assert.ok(Math.abs(features[SUBCARRIERS - 1] - Math.sqrt(34)) < 1e-5)
  assert.ok(Math.abs(features[FEATURES - 1] - Math.atan2(5, -3)) < 1e-6)
})

test('raw Pi magnitudes fall in the range of the labelled session\'s magnitudes', () => {
  const sessionMax = Math.max(...sessionRow.slice(0, SUBCARRIERS))
  const piMax = Math.max(...piLines.map((line) => Math.max(...magnitudes(parseFrame(line)))))
  // same radio chain, so the same order of magnitude (test/fixtures/csi/README.md: roughly 0..45)
  assert.ok(piMax > 5 && piMax < 60, `Pi max ${piMax}`)
  assert.ok(sessionMax > 5 && sessionMax < 60, `session max ${sessionMax}`)
})

test('every ESP32-CSI-Tool line decodes from the array, whatever its length field says', () => {
  let lyingLengthFields = 0
  for (const [lineNo, line] of esp32Lines.entries()) {
    const values = esp32Values(line)
    assert.equal(values.length, 128, `line ${lineNo + 1}`)
    if (line.split(',')[24] !== '128') lyingLengthFields++
    const { features, encoding } = parseFrameWithEncoding(line)
    assert.equal(encoding, 'raw-esp32')
    const mags = magnitudes(features)
    assert.equal(mags[DC_INDEX], 0, `line ${lineNo + 1}: CH32 is set to 0 like the CSV`)
    assert.notDeepEqual([values[64], values[65]], [0, 0], 'the ESP32 reports a small value at DC')
    // guard bands (pairs 2-4, 60-63) are zero: a mapping that reached them would show silent subcarriers
    const silent = [...mags].flatMap((m, k) => (k !== DC_INDEX && m === 0 ? [FEATURE_NAMES[k]] : []))
    assert.deepEqual(silent, [], `line ${lineNo + 1}`)
    for (const m of mags) assert.ok(m >= 0 && m <= 60, `line ${lineNo + 1}: magnitude ${m}`)
    for (const p of phases(features)) assert.ok(p >= -PI32 && p <= PI32)
    // the bare array (space separated, as in the line) and a JSON array decode the same
    assert.deepEqual(parseFrame(line.slice(line.indexOf('['))), features)
    assert.deepEqual(parseFrame(values), features)
  }
  assert.equal(lyingLengthFields, 12)
})

test('an ESP32 subcarrier computed by hand: line 1, pair 6 = (im 23, re 12) is CH6; pair 58 is CH58', () => {
  const values = esp32Values(esp32Lines[0])
  assert.deepEqual(values.slice(12, 14), [23, 12])
  const features = parseFrame(esp32Lines[0])
  assert.ok(Math.abs(features[0] - Math.sqrt(23 * 23 + 12 * 12)) < 1e-5)
  assert.ok(Math.abs(features[SUBCARRIERS] - Math.atan2(23, 12)) < 1e-6)
  const [im58, re58] = values.slice(116, 118)
  assert.ok(Math.abs(features[SUBCARRIERS - 1] - Math.hypot(im58, re58)) < 1e-5)
})

test('106 features: the original string, an array and a Float64Array give the CSV row, in order', () => {
  const expected = Float32Array.from(sessionRow)
  const asString = `[${sessionRow.join(', ')}]`
  assert.deepEqual(parseFrame(asString), expected)
  assert.deepEqual(parseFrame(sessionRow), expected)
  assert.deepEqual(parseFrame(Float64Array.from(sessionRow)), expected)
  // space separated, no brackets, extra blanks
  assert.deepEqual(parseFrame(`  ${sessionRow.join(' ')} \n`), expected)
  assert.equal(parseFrameWithEncoding(asString).encoding, 'features')
  assert.equal(parseFrame(sessionRow)[DC_INDEX], 0, 'the CSV\'s CH32 is 0')
})

test('empty frames are refused', () => {
  for (const empty of ['', '   ', '[]', '[ ]', []]) assertFrameError(() => parseFrame(empty), /^frame is empty$/)
  assertFrameError(() => parseFrame('CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,[]'), /^frame is empty$/)
})

test('a wrong count is refused, naming the count', () => {
  for (const count of [1, 105, 107, 127, 129, 212]) {
    assertFrameError(() => parseFrame(Array.from({ length: count }, () => 1)),
      new RegExp(`must hold 106 features, 108 raw Pi values or 128 raw ESP32 values, got ${count}$`))
  }
  assertFrameError(() => parseFrame(`[${sessionRow.slice(0, 104).join(', ')}]`), /got 104$/)
})

test('NaN and Infinity are refused with their position, in arrays and in strings', () => {
  const withNaN = [...sessionRow]
  withNaN[5] = Number.NaN
  assertFrameError(() => parseFrame(withNaN), /^frame value 5 is not a finite number \(got NaN\)$/)
  const withInfinity = [...sessionRow]
  withInfinity[70] = Number.NEGATIVE_INFINITY
  assertFrameError(() => parseFrame(withInfinity), /^frame value 70 is not a finite number \(got -Infinity\)$/)
  const text = [...sessionRow.map(String)]
  text[3] = 'NaN'
  assertFrameError(() => parseFrame(`[${text.join(', ')}]`), /^frame value 3 is not a finite number \(got "NaN"\)$/)
  text[3] = 'Infinity'
  assertFrameError(() => parseFrame(`[${text.join(', ')}]`), /^frame value 3 is not a finite number \(got "Infinity"\)$/)
  assertFrameError(() => parseFrame(Float32Array.from([...sessionRow.slice(0, 105), Number.NaN])), /frame value 105 is not a finite number/)
})

test('values outside what the hardware reports are refused, with the range in the message', () => {
  // the attack that was accepted with confidence 1: a raw Pi frame of 108 × 1e20
  assertFrameError(() => parseFrame(Array(108).fill(1e20)),
    /^raw Pi frame value 0 is 100000000000000000000: raw imaginary\/real parts are integers in -128\.\.127/)
  const rawPi = JSON.parse(piLines[0]) as number[]
  rawPi[2] = 128
  assertFrameError(() => parseFrame(rawPi), /^raw Pi frame value 2 is 128: .*-128\.\.127/)
  rawPi[2] = 3.5
  assertFrameError(() => parseFrame(rawPi), /^raw Pi frame value 2 is 3\.5: raw imaginary\/real parts are integers/)
  // the edges themselves are what an int8 can hold
  rawPi[2] = -128
  rawPi[3] = 127
  assert.ok(Math.abs(parseFrame(rawPi)[0] - Math.hypot(128, 127)) < 1e-4)
  const rawEsp = Array(128).fill(0)
  rawEsp[20] = -129
  assertFrameError(() => parseFrame(rawEsp), /^raw ESP32 frame value 20 is -129/)

  const huge = [...sessionRow]
  huge[10] = 1e39
  assertFrameError(() => parseFrame(huge), /^frame feature CH16_mag is 1e\+39: magnitudes lie in 0\.\.182$/)
  const negative = [...sessionRow]
  negative[0] = -0.5
  assertFrameError(() => parseFrame(negative), /^frame feature CH6_mag is -0\.5: magnitudes lie in 0\.\.182$/)
  const phase = [...sessionRow]
  phase[53 + 4] = 3.2
  assertFrameError(() => parseFrame(phase), /^frame feature CH10_phase is 3\.2: phases lie in -3\.142\.\.3\.142 radians$/)
  // the recording's own extremes pass: magnitudes up to 49.1, phases ±3.142 (π rounded to the CSV's 3 decimals)
  const edge = [...sessionRow]
  edge[0] = 182
  edge[53] = -3.142
  edge[105] = 3.142
  assert.equal(parseFrame(edge)[105], Math.fround(3.142))
})

test('non-numbers are refused with their position and value', () => {
  const withText = [...sessionRow] as unknown[]
  withText[2] = 'abc'
  assertFrameError(() => parseFrame(withText), /^frame value 2 is not a finite number \(got "abc"\)$/)
  const withNull = [...sessionRow] as unknown[]
  withNull[0] = null
  assertFrameError(() => parseFrame(withNull), /^frame value 0 is not a finite number \(got null\)$/)
  const withNumericString = [...sessionRow] as unknown[]
  withNumericString[9] = '1.5'
  assertFrameError(() => parseFrame(withNumericString), /^frame value 9 is not a finite number \(got "1.5"\)$/)
  assertFrameError(() => parseFrame('[1, 2, x]'), /^frame value 2 is not a finite number \(got "x"\)$/)
  assertFrameError(() => parseFrame([[1, 2]]), /^frame value 0 is not a finite number \(got \[1,2\]\)$/)
})

test('inputs that are not frames at all are refused', () => {
  assertFrameError(() => parseFrame(null), /^frame is missing$/)
  assertFrameError(() => parseFrame(undefined), /^frame is missing$/)
  assertFrameError(() => parseFrame(42), /^frame must be an array of numbers or a string, got number$/)
  assertFrameError(() => parseFrame({ payload: sessionRow }), /got object$/)
  assertFrameError(() => parseFrame(true), /got boolean$/)
  assertFrameError(() => parseFrame('CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,384'), /^CSI_DATA line has no \[ … \] array of values$/)
})
