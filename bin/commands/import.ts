/**
 * `doorsense import --data FILE.csv [--id DEVICE] [--json]`: stores the
 * labelled frames of a session CSV in DATA_DIR's database, with the same
 * reader and the same single transaction as POST /training/post/import: a bad
 * line rejects the whole file. The counts go to stdout, problems to stderr.
 * Exit codes: 0 ok, 1 bad arguments, configuration or file (nothing stored).
 */
import { createReadStream } from 'node:fs'
import { loadConfig } from '../../core/config.js'
import { Storage } from '../../core/storage.js'
import { SampleStore } from '../../ml/sample-store.js'
import { importSessionCsv } from '../../ml/session-import.js'
import type { ImportResult } from '../../schemas/training.js'
import { parseOptions, processIo, type CommandIo } from './command-line.js'

const USAGE = `usage: doorsense import --data FILE.csv [--id DEVICE] [--json]

Stores the labelled frames of FILE (a session CSV: Label, CH6_mag … CH58_phase)
as training samples in DATA_DIR's database. All or nothing: any bad line
rejects the file, naming the line.

  --data FILE    the session CSV (required)
  --id DEVICE    the device (Pi ID 0..32767) that recorded it (default: none)
  --json         print the counts as one JSON object

Environment: DATA_DIR (default ./data). Exit codes: 0 ok, 1 bad arguments or file.`

/** Runs `import`; resolves to the exit code. */
export async function run (argv: string[], io: CommandIo = processIo): Promise<number> {
  let values
  try {
    values = parseOptions(argv, { data: { type: 'string' }, id: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } })
  } catch (err) {
    io.stderr.write(`doorsense import: ${(err as Error).message}\n\n${USAGE}\n`)
    return 1
  }
  if (values.help) {
    io.stdout.write(USAGE + '\n')
    return 0
  }
  if (values.data === undefined || values.data.trim() === '') {
    io.stderr.write(`doorsense import: --data FILE.csv is required\n\n${USAGE}\n`)
    return 1
  }
  const device = values.id === undefined ? null : Number(values.id)
  if (device !== null && !(Number.isInteger(device) && device >= 0 && device <= 32767)) {
    io.stderr.write(`doorsense import: --id must be a Pi ID 0..32767, got ${JSON.stringify(values.id)}\n`)
    return 1
  }

  let storage: Storage
  try {
    storage = new Storage(loadConfig(io.env ?? process.env).DATA_DIR)
  } catch (err) {
    io.stderr.write(`doorsense import: ${(err as Error).message}\n`)
    return 1
  }
  try {
    const result = await importSessionCsv(new SampleStore(storage), createReadStream(values.data), { source: 'import', device })
    io.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatImport(values.data, result))
    return 0
  } catch (err) {
    io.stderr.write(`doorsense import: ${values.data}: ${(err as Error).message}\n`)
    return 1
  } finally {
    storage.close()
  }
}

/** The text summary of an import. */
export function formatImport (file: string, result: ImportResult): string {
  const labels = result.labels.map((label) => `${label.angle}°: ${label.count}`).join(', ')
  return `imported ${result.imported} samples from ${file} (${result.lines} lines)\n${labels}\n`
}
