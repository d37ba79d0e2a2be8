/**
 * Imports a recorded-session CSV (the layout of door-angles-session-a.csv)
 * from a stream, line by line, into the sample store: every row or, if any
 * line is bad, none. The same content imported twice for the same device is
 * refused unless asked for. Used by POST /training/post/import and
 * `doorsense import` / `doorsense train --data`.
 */
import { createHash } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'
import { BadRequestError, DuplicateImportError, PayloadTooLargeError } from '../../core/errors.js'
import { SessionCsvReader, type SessionRow } from '../../domain/session-csv.js'
import { OWN_TRANSACTION, thenMaybe, type MaybePromise, type StoreTransaction } from '../../core/store-transaction.js'
import type { ImportResult, SampleSource } from '../../schemas/training.js'
import { labelCounts, type ImportRecord, type SampleStore } from './sample-store.js'

/** How many bad lines an error message lists before it says "and N more". */
export const LISTED_PROBLEMS = 10

/** What to do with content already imported for the device: refuse (409) or import it again. */
export type DuplicatePolicy = 'refuse' | 'allow'

export interface ImportOptions {
  /** Largest body in bytes; more is a 413 and nothing is stored. */
  byteLimit?: number
  source?: SampleSource
  device?: number | null
  /** Default `refuse`. */
  duplicate?: DuplicatePolicy
}

/** A session CSV read and checked, not stored yet. */
export interface SessionUpload {
  rows: SessionRow[]
  /** Lines read, header included. */
  lines: number
  /**
   * sha256 (hex) of the normalised content: each non-blank line trimmed (a
   * BOM, CR line endings and surrounding spaces do not count), one `\n` after each.
   */
  contentSha256: string
}

/**
 * Reads `input` (a byte or string stream) as a session CSV.
 * @throws BadRequestError listing the bad lines by number
 * @throws PayloadTooLargeError past `byteLimit`
 */
export async function readSessionUpload (input: AsyncIterable<Buffer | string>, options: Pick<ImportOptions, 'byteLimit'> = {}): Promise<SessionUpload> {
  const reader = new SessionCsvReader()
  const decoder = new StringDecoder('utf8')
  const hash = createHash('sha256')
  const limit = options.byteLimit ?? Number.POSITIVE_INFINITY
  let bytes = 0
  let pending = ''
  let lines = 0
  const push = (line: string) => {
    lines++
    reader.push(line.endsWith('\r') ? line.slice(0, -1) : line)
    // trim() also takes out a BOM (U+FEFF)
    const normalised = line.trim()
    if (normalised !== '') hash.update(normalised).update('\n')
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
  return { rows: reader.rows, lines, contentSha256: hash.digest('hex') }
}

/**
 * Stores a read upload in the transaction `tx` (core/store-transaction.ts),
 * with a record of the import.
 * @throws DuplicateImportError (409) when the same content is stored for the same device already, unless `duplicate` is `allow`
 */
export function storeSessionUploadWithin (
  tx: StoreTransaction,
  store: SampleStore,
  upload: SessionUpload,
  options: Omit<ImportOptions, 'byteLimit'> = {}
): MaybePromise<ImportResult> {
  const device = options.device ?? null
  const source = options.source ?? 'import'
  const samples = upload.rows.map((row) => ({ kind: 'csi' as const, angle: row.angle, features: row.features, device, source }))
  return thenMaybe(store.insertImportWithin(tx, samples, upload.contentSha256, device, { allowDuplicate: options.duplicate === 'allow' }), (stored) => {
    if ('duplicateOf' in stored) throw new DuplicateImportError(describeDuplicate(stored.duplicateOf))
    return {
      imported: upload.rows.length,
      lines: upload.lines,
      labels: labelCounts(upload.rows.map((row) => row.angle)),
      importId: stored.importId,
      contentSha256: upload.contentSha256
    }
  })
}

/**
 * Reads `input` as a session CSV and stores its rows in one transaction.
 * @throws BadRequestError listing the bad lines by number (nothing stored)
 * @throws PayloadTooLargeError past `byteLimit` (nothing stored)
 * @throws DuplicateImportError (409) for content already imported for the device (nothing stored)
 */
export async function importSessionCsv (store: SampleStore, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportResult> {
  const upload = await readSessionUpload(input, options)
  return storeSessionUploadWithin(OWN_TRANSACTION, store, upload, options)
}

/** "… was imported already: import 4 on …": what the 409 says. */
export function describeDuplicate (earlier: ImportRecord): string {
  const device = earlier.device === null ? 'without a device' : `for device ${earlier.device}`
  return `this CSV (sha256 ${earlier.contentSha256.slice(0, 12)}…) was imported ${device} already: ` +
    `import ${earlier.id} at ${earlier.importedAt}, ${earlier.rows} rows; nothing imported`
}
