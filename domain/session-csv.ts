/**
 * The recorded-session CSV layout (the original's training input): a header
 * `Label,CH6_mag,…,CH58_mag,CH6_phase,…,CH58_phase` (107 columns), then one
 * labelled frame per line. Read line by line so a 50 MiB upload is never held
 * as one string.
 */
import { FEATURE_NAMES, FEATURES, featureProblem } from './frames.js'
import { describeValue } from '../schemas/describe.js'
import { angleProblem, MAX_ANGLE } from './labels.js'

/** The exact header columns. */
export const SESSION_CSV_COLUMNS: readonly string[] = ['Label', ...FEATURE_NAMES]

/** One labelled frame read from a session CSV. */
export interface SessionRow {
  angle: number
  features: Float32Array
}

/** A line that could not be read, with its 1-based line number. */
export interface SessionCsvProblem {
  line: number
  reason: string
}

/** Why `line` is not the session CSV header, or undefined when it is. */
export function headerProblem (line: string): string | undefined {
  const columns = line.trim().replace(/^\uFEFF/, '').split(',').map((column) => column.trim())
  if (columns.length !== SESSION_CSV_COLUMNS.length) {
    return `header must have ${SESSION_CSV_COLUMNS.length} columns (Label, CH6_mag … CH58_mag, CH6_phase … CH58_phase), ` +
      `got ${columns.length}: ${columnDifference(columns)}`
  }
  const wrong = columns.findIndex((column, i) => column !== SESSION_CSV_COLUMNS[i])
  if (wrong >= 0) return `header column ${wrong + 1} must be ${SESSION_CSV_COLUMNS[wrong]}, got ${JSON.stringify(columns[wrong])}`
  return undefined
}

/** Column names listed in a message before the rest are only counted. */
const NAMES_LISTED = 5

/** Which expected columns a header lacks and which it has too many of (unknown names, or a name twice), e.g. `missing CH30_phase`. */
function columnDifference (columns: readonly string[]): string {
  const seen = new Map<string, number>()
  for (const column of columns) seen.set(column, (seen.get(column) ?? 0) + 1)
  const expected = new Set(SESSION_CSV_COLUMNS)
  const missing = SESSION_CSV_COLUMNS.filter((column) => !seen.has(column))
  const extra: string[] = []
  for (const [column, count] of seen) {
    if (!expected.has(column)) extra.push(...Array<string>(count).fill(column === '' ? 'an unnamed column (a trailing comma?)' : JSON.stringify(column)))
    else if (count > 1) extra.push(`${column} (${count} times)`)
  }
  const parts: string[] = []
  if (missing.length > 0) parts.push(`missing ${listNames(missing)}`)
  if (extra.length > 0) parts.push(`extra ${listNames(extra)}`)
  return parts.join('; ')
}

/** "a, b and c", or the first few and "and N more". */
function listNames (names: readonly string[]): string {
  if (names.length === 1) return names[0] as string
  if (names.length <= NAMES_LISTED) return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return `${names.slice(0, NAMES_LISTED).join(', ')} and ${names.length - NAMES_LISTED} more`
}

/**
 * Reads one data line.
 * @returns the row, or a string saying what is wrong with it
 */
export function parseSessionRow (line: string): SessionRow | string {
  const cells = line.split(',')
  if (cells.length !== SESSION_CSV_COLUMNS.length) return `expected ${SESSION_CSV_COLUMNS.length} values, got ${cells.length}`
  const angle = cellNumber(cells[0])
  // the cell as written: "closed" read as a number is NaN, which would be quoted as null
  if (!Number.isFinite(angle)) return `Label must be the door angle in degrees (0 = closed … ${MAX_ANGLE} = wide open), got ${describeValue(cells[0])}`
  const problem = angleProblem(angle)
  if (problem) return `Label: ${problem}`
  const features = new Float32Array(FEATURES)
  for (let i = 0; i < FEATURES; i++) {
    const value = cellNumber(cells[i + 1])
    if (!Number.isFinite(value)) return `${SESSION_CSV_COLUMNS[i + 1]} is not a finite number (got ${JSON.stringify(cells[i + 1])})`
    // a value no receiver can report would train the model on noise
    const outOfRange = featureProblem(i, value)
    if (outOfRange !== undefined) return outOfRange
    features[i] = value
  }
  return { angle, features }
}

function cellNumber (cell: string): number {
  const text = cell.trim()
  // Number('') is 0: an empty cell must not pass as a zero
  return text === '' ? Number.NaN : Number(text)
}

/**
 * Incremental reader: feed it lines in order (the first non-blank one is the
 * header); it collects rows and problems with their line numbers.
 */
export class SessionCsvReader {
  readonly rows: SessionRow[] = []
  readonly problems: SessionCsvProblem[] = []
  private lineNumber = 0
  private sawHeader = false

  /** Reads the next line of the file. */
  push (line: string): void {
    this.lineNumber++
    if (line.trim() === '') return
    if (!this.sawHeader) {
      this.sawHeader = true
      const problem = headerProblem(line)
      if (problem) this.problems.push({ line: this.lineNumber, reason: problem })
      return
    }
    const row = parseSessionRow(line)
    if (typeof row === 'string') this.problems.push({ line: this.lineNumber, reason: row })
    else this.rows.push(row)
  }

  /** Problems including "no header"/"no rows" once the input has ended. */
  finish (): SessionCsvProblem[] {
    if (!this.sawHeader) this.problems.push({ line: 1, reason: 'file is empty: expected the header line' })
    else if (this.rows.length === 0 && this.problems.length === 0) this.problems.push({ line: this.lineNumber, reason: 'file has a header but no data rows' })
    return this.problems
  }
}

/** Reads a whole session CSV held in memory (tests, CLI). */
export function readSessionCsv (text: string): { rows: SessionRow[], problems: SessionCsvProblem[] } {
  const reader = new SessionCsvReader()
  for (const line of text.split(/\r?\n/)) reader.push(line)
  reader.finish()
  return { rows: reader.rows, problems: reader.problems }
}
