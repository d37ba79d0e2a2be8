/**
 * `doorsense import --data FILE.csv [--id DEVICE] [--server URL] [--json]`:
 * stores the labelled frames of a session CSV in DATA_DIR's database, with
 * the same reader and the same single transaction as POST
 * /training/post/import: a bad line rejects the whole file. While a server
 * owns DATA_DIR it refuses (exit 3); `--server` sends the file to that
 * server's import route instead. The counts go to stdout, problems to stderr.
 * Exit codes: 0 ok, 1 bad arguments, configuration or file (nothing stored),
 * 3 a live server owns DATA_DIR (nothing stored).
 */
import { createReadStream } from 'node:fs'
import { loadConfig, type Config } from '../../core/config.js'
import { Storage } from '../../core/storage.js'
import { SqliteSampleStore } from '../../ml/store/sample-store.js'
import { importSessionCsv } from '../../ml/store/session-import.js'
import type { ImportResult } from '../../schemas/training.js'
import { EXIT_SERVER_RUNNING, owningServer, parseOptions, processIo, serverRunningMessage, type CommandIo } from './command-line.js'
import { importThroughServer, serverConnection } from './through-server.js'

const USAGE = `usage: doorsense import --data FILE.csv [--id DEVICE] [--allow-duplicate] [--server URL] [--json]

Stores the labelled frames of FILE (a session CSV: Label, CH6_mag … CH58_phase)
as training samples in DATA_DIR's database. All or nothing: any bad line
rejects the file, naming the line. The same content imported for the same
device before (and still stored) is refused, naming that import.

  --data FILE    the session CSV (required)
  --id DEVICE    the device (Pi ID 0..32767) that recorded it (default: none)
  --allow-duplicate
                 import FILE even if its content was imported for DEVICE already
  --server URL   import through the running server at URL (POST /training/post/import)
                 instead of writing DATA_DIR; needs its admin token (ADMIN_TOKEN, else
                 DATA_DIR/admin-token)
  --json         print the counts as one JSON object

Only one process may write a DATA_DIR: while a live server owns it (its pid file
DATA_DIR/doorsense.pid names a running server) import refuses with exit 3 —
stop the server, or use --server. A pid file of a server that is gone is ignored.

Environment: DATA_DIR (default ./data), ADMIN_TOKEN.
Exit codes: 0 ok, 1 bad arguments or file, content imported already, or the server refused it; 3 a live server owns DATA_DIR.`

/** Runs `import`; resolves to the exit code. */
export async function run (argv: string[], io: CommandIo = processIo): Promise<number> {
  let values
  try {
    values = parseOptions(argv, {
      data: { type: 'string' },
      id: { type: 'string' },
      'allow-duplicate': { type: 'boolean' },
      server: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    })
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
  // decimal digits only, as the HTTP routes take it: Number() would read "0x10" as 16 and "1e3" as 1000
  const device = values.id === undefined ? null : /^\d{1,5}$/.test(values.id) ? Number(values.id) : Number.NaN
  if (device !== null && !(Number.isInteger(device) && device >= 0 && device <= 32767)) {
    io.stderr.write(`doorsense import: --id must be a Pi ID 0..32767, got ${JSON.stringify(values.id)}\n`)
    return 1
  }

  const duplicate = values['allow-duplicate'] ? 'allow' : 'refuse'
  const env = io.env ?? process.env
  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    io.stderr.write(`doorsense import: ${(err as Error).message}\n`)
    return 1
  }
  const report = (result: ImportResult) => {
    io.stdout.write(values.json ? JSON.stringify(result) + '\n' : formatImport(values.data as string, result))
    return 0
  }

  if (values.server !== undefined) {
    try {
      const server = serverConnection(values.server, env, config.DATA_DIR)
      return report(await importThroughServer(server, values.data, device, duplicate))
    } catch (err) {
      io.stderr.write(`doorsense import: ${values.data}: ${failureMessage(err)}\n`)
      return 1
    }
  }
  const owner = owningServer(config.DATA_DIR)
  if (owner) {
    io.stderr.write(`doorsense import: ${serverRunningMessage('import', config.DATA_DIR, owner, argv)}\n`)
    return EXIT_SERVER_RUNNING
  }

  let storage: Storage
  try {
    storage = new Storage(config.DATA_DIR)
  } catch (err) {
    io.stderr.write(`doorsense import: ${(err as Error).message}\n`)
    return 1
  }
  try {
    return report(await importSessionCsv(new SqliteSampleStore(storage), createReadStream(values.data), { source: 'import', device, duplicate }))
  } catch (err) {
    io.stderr.write(`doorsense import: ${values.data}: ${failureMessage(err)}\n`)
    return 1
  } finally {
    storage.close()
  }
}

/** Why the import failed; a refused duplicate says how to import it all the same. */
function failureMessage (err: unknown): string {
  const { message, code, status } = err as Error & { code?: unknown, status?: unknown }
  // through a server the refusal is its 409, which names the query parameter: the flag is what this user types
  const duplicate = code === 'DS_DUPLICATE_IMPORT' || (status === 409 && /imported .* already/.test(message))
  return duplicate
    ? `${message.replace(/ \(to import the same content again on purpose, add \?duplicate=allow\)$/, '')}; pass --allow-duplicate to import it again`
    : message
}

/** The text summary of an import. */
export function formatImport (file: string, result: ImportResult): string {
  const labels = result.labels.map((label) => `${label.angle}°: ${label.count}`).join(', ')
  return `imported ${result.imported} samples from ${file} (${result.lines} lines)\n${labels}\n`
}
