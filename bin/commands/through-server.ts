/**
 * The CLI's writing commands done by a running server over its HTTP API
 * (`--server URL`): while a server owns DATA_DIR it must be the only process
 * writing there, so the CLI asks it to import and train instead of opening
 * the database itself. Admin routes, so the admin token: ADMIN_TOKEN, else
 * DATA_DIR/admin-token (the CLI usually runs where the server does).
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ADMIN_TOKEN_FILE } from '../../core/auth.js'
import type { TrainingFailure, TrainingOptions, TrainingProgress } from '../../schemas/model.js'
import type { EvaluationResponse, ImportResult, ModelList, TrainAccepted } from '../../schemas/training.js'
import { UsageError } from './command-line.js'

/** A server and the admin token it takes. */
export interface ServerConnection {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:20002`. */
  url: string
  token: string
}

/** A call the server refused (`status` its HTTP status) or could not be made (`status` 0). */
export class ServerCallError extends Error {
  override name = 'ServerCallError'
  constructor (message: string, readonly status: number) {
    super(message)
  }
}

/**
 * The connection `--server` names.
 * @throws {UsageError} for a URL that is not http(s), or when no admin token can be found
 */
export function serverConnection (server: string, env: Record<string, string | undefined>, dataDir: string): ServerConnection {
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new UsageError(`--server must be the server's URL, e.g. http://127.0.0.1:20002, got ${JSON.stringify(server)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server must be an http:// or https:// URL, got ${JSON.stringify(server)}`)
  const file = join(dataDir, ADMIN_TOKEN_FILE)
  let token = env.ADMIN_TOKEN
  if (!token) {
    try {
      token = readFileSync(file, 'utf8').trim()
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new UsageError(`--server needs the server's admin token: set ADMIN_TOKEN, or run where ${file} is readable (${reason})`)
    }
  }
  return { url: url.href.replace(/\/+$/, ''), token }
}

/** One call; resolves to the JSON (or text) answer of a 2xx. @throws {ServerCallError} with the server's message */
async function call<T> (server: ServerConnection, method: 'GET' | 'POST', path: string, body?: { json: unknown } | { csv: Buffer }): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${server.token}` }
  let payload: string | Buffer | undefined
  if (body && 'json' in body) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body.json)
  } else if (body) {
    headers['content-type'] = 'text/csv'
    payload = body.csv
  }
  let response: Response
  try {
    response = await fetch(`${server.url}${path}`, { method, headers, body: payload })
  } catch (err) {
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    throw new ServerCallError(`cannot reach ${server.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 0)
  }
  const text = await response.text()
  if (!response.ok) {
    let message = text
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text
    } catch {
      // not the JSON error body (a proxy's page): the text says it
    }
    throw new ServerCallError(`${method} ${path}: ${response.status} ${message}`, response.status)
  }
  return (response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text) as T
}

/** `import` through the server: POST /training/post/import, the same all-or-nothing import. */
export async function importThroughServer (
  server: ServerConnection,
  file: string,
  device: number | null,
  duplicate: 'refuse' | 'allow' = 'refuse'
): Promise<ImportResult> {
  const csv = await readFile(file)
  const query = new URLSearchParams()
  if (device !== null) query.set('ID', String(device))
  // content imported already is refused (409) unless asked for
  if (duplicate === 'allow') query.set('duplicate', 'allow')
  const search = query.size > 0 ? `?${query}` : ''
  return await call<ImportResult>(server, 'POST', `/training/post/import${search}`, { csv })
}

/** How a training through the server went. */
export interface ServerTraining {
  accepted: TrainAccepted
  /** The version's row once it is active, else undefined (then `failure` says why). */
  active: ModelList['versions'][number] | undefined
  failure: TrainingFailure | undefined
  evaluation: EvaluationResponse | undefined
  /** The backend the server trains on (e.g. "cpu"). */
  backend: string
}

/** While these, the run is under way. */
const RUNNING = new Set(['START_TRAINING', 'TRAINING_IN_PROGRESS'])

/**
 * `train` through the server: POST /training/post/train, then its progress
 * every `pollMs` until the run has ended, then the version list and the
 * evaluation. `onProgress` hears the run's own progress.
 */
export async function trainThroughServer (
  server: ServerConnection,
  options: TrainingOptions,
  onProgress: (progress: TrainingProgress) => void,
  pollMs = 250
): Promise<ServerTraining> {
  const accepted = await call<TrainAccepted>(server, 'POST', '/training/post/train', { json: options })
  for (;;) {
    const progress = await call<TrainingProgress>(server, 'GET', '/training/get/progress')
    const own = progress.version === accepted.version
    if (own) onProgress(progress)
    // before the worker's first report the progress is the previous run's: the state alone tells
    if (!RUNNING.has(progress.state) && (own || !RUNNING.has(await call<string>(server, 'GET', '/training/get/training_status')))) break
    await sleep(pollMs)
  }
  const models = await call<ModelList>(server, 'GET', '/training/get/models')
  const row = models.versions.find((info) => info.version === accepted.version)
  const active = row?.active ? row : undefined
  let failure: TrainingFailure | undefined
  let evaluation: EvaluationResponse | undefined
  if (active) {
    const evaluationPath = `/training/get/evaluation?version=${encodeURIComponent(accepted.version)}`
    evaluation = await call<EvaluationResponse>(server, 'GET', evaluationPath).catch(() => undefined)
  } else {
    const last = await call<TrainingFailure & { failed?: boolean }>(server, 'GET', '/debug/get/training_failure')
    failure = last.version === accepted.version
      ? last
      : { at: new Date().toISOString(), message: `version ${accepted.version} is not the active one after the run`, version: accepted.version }
  }
  const versionText = await call<string>(server, 'GET', '/debug/get/version/tensorflow')
  const backend = /backend (\S+?)[,)]/.exec(versionText)?.[1] ?? versionText
  return { accepted, active, failure, evaluation, backend }
}
