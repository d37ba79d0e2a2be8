import { test } from 'node:test'
import assert from 'node:assert/strict'
import { headerProblem, parseSessionRow, SESSION_CSV_COLUMNS } from '../../domain/session-csv.js'
import { angleProblem } from '../../domain/labels.js'

const header = (columns: readonly string[]) => columns.join(',')
const without = (name: string) => SESSION_CSV_COLUMNS.filter((column) => column !== name)

test('a header with a column too few or too many names it', () => {
  assert.equal(headerProblem(header(SESSION_CSV_COLUMNS)), undefined)
  assert.equal(headerProblem(header(without('CH30_phase'))),
    'header must have 107 columns (Label, CH6_mag … CH58_mag, CH6_phase … CH58_phase), got 106: missing CH30_phase')
  assert.match(headerProblem(header([...SESSION_CSV_COLUMNS, 'RSSI'])) ?? '', /got 108: extra "RSSI"$/)
  assert.match(headerProblem(header([...SESSION_CSV_COLUMNS, ''])) ?? '', /got 108: extra an unnamed column \(a trailing comma\?\)$/)
  assert.match(headerProblem(header([...SESSION_CSV_COLUMNS, 'CH6_mag'])) ?? '', /got 108: extra CH6_mag \(2 times\)$/)
  // one renamed and one dropped: both sides named
  const renamed = without('CH7_mag').map((column) => column === 'Label' ? 'angle' : column)
  assert.match(headerProblem(header(renamed)) ?? '', /got 106: missing Label and CH7_mag; extra "angle"$/)
  // not a header at all: the first few, then a count
  assert.match(headerProblem('Label,foo') ?? '', /got 2: missing CH6_mag, CH7_mag, CH8_mag, CH9_mag, CH10_mag and 101 more; extra "foo"$/)
  // the right count in the wrong order is still named by position
  const swapped = [...SESSION_CSV_COLUMNS]
  ;[swapped[1], swapped[2]] = [swapped[2] as string, swapped[1] as string]
  assert.equal(headerProblem(header(swapped)), 'header column 2 must be CH6_mag, got "CH7_mag"')
})

test('a label that is not a number is quoted as written, not as null', () => {
  const row = (label: string) => [label, ...Array<string>(SESSION_CSV_COLUMNS.length - 1).fill('0.5')].join(',')
  assert.equal(parseSessionRow(row('closed')), 'Label must be the door angle in degrees (0 = closed … 90 = wide open), got "closed"')
  assert.equal(parseSessionRow(row('')), 'Label must be the door angle in degrees (0 = closed … 90 = wide open), got ""')
  assert.equal(parseSessionRow(row('NaN')), 'Label must be the door angle in degrees (0 = closed … 90 = wide open), got "NaN"')
  assert.equal(parseSessionRow(row('120')), 'Label: angle must lie in 0..90 degrees, got 120')
  assert.equal(typeof parseSessionRow(row('45')), 'object')
  // and an angle that is not a finite number says what it was
  assert.equal(angleProblem(Number.NaN), 'angle must be a finite number of degrees, got NaN')
  assert.equal(angleProblem(Infinity), 'angle must be a finite number of degrees, got Infinity')
  assert.equal(angleProblem('closed'), 'angle must be a finite number of degrees, got "closed"')
  assert.equal(angleProblem(null), 'angle must be a finite number of degrees, got null')
})
