/**
 * Imports a recorded-session CSV (the layout of door-angles-session-a.csv)
 * from a stream, line by line, into the sample store: every row or, if any
 * line is bad, none. Used by POST /training/post/import and `doorsense import`.
 */
import { StringDecoder } from 'node:string_decoder'
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js'
import { SessionCsvReader } from '../domain/session-csv.js'
import type { ImportResult, SampleSource } from '../schemas/training.js'
import { labelCounts, type SampleStore } from './sample-store.js'

/** How many bad lines an error message lists before it says "and N more". */
export const LISTED_PROBLEMS = 10

export interface ImportOptions {
  /** Largest body in bytes; more is a 413 and nothing is stored. */
  byteLimit?: number
  source?: SampleSource
  device?: number | null
}

/**
 * Reads `input` (a byte or string stream) as a session CSV and stores its rows
 * in one transaction.
 * @throws BadRequestError listing the bad lines by number (nothing stored)
 * @throws PayloadTooLargeError past `byteLimit` (nothing stored)
 */
export async function importSessionCsv (store: SampleStore, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportResult> {
  const reader = new SessionCsvReader()
  const decoder = new StringDecoder('utf8')
  const limit = options.byteLimit ?? Number.POSITIVE_INFINITY
  let bytes = 0
  let pending = ''
  let lines = 0
  const push = (line: string) => {
    lines++
    reader.push(line.endsWith('\r') ? line.slice(0, -1) : line)
  }
  for await (const chunk of input) {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength
    if (bytes > limit) throw new PayloadTooLargeError(`CSV body exceeds IMPORT_BODY_LIMIT (${limit} bytes); split the file`)
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk)
    let newline = pending.indexOf('\n')
    let start = 0
    while (newline >= 0) {
      push(pending.slice(start, newline))
      start = newline + 1
      newline = pending.indexOf('\n', start)
    }
    pending = pending.slice(start)
  }
  pending += decoder.end()
  if (pending !== '') push(pending)

  const problems = reader.finish()
  if (problems.length) {
    const listed = problems.slice(0, LISTED_PROBLEMS).map((problem) => `line ${problem.line}: ${problem.reason}`)
    const more = problems.length > LISTED_PROBLEMS ? `; and ${problems.length - LISTED_PROBLEMS} more` : ''
    throw new BadRequestError(`CSV rejected, nothing imported: ${problems.length} bad line${problems.length === 1 ? '' : 's'}: ${listed.join('; ')}${more}`)
  }
  const source = options.source ?? 'import'
  const imported = store.insert(reader.rows.map((row) => ({ kind: 'csi', angle: row.angle, features: row.features, device: options.device ?? null, source })))
  return { imported, lines, labels: labelCounts(reader.rows.map((row) => row.angle)) }
}
