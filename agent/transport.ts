/**
 * How the agent talks to the server, and what each answer means for a batch
 * of frames. The agent's logic (agent.ts) only sees {@link Delivery}
 * outcomes, so it is tested with a scripted transport and run with
 * {@link HttpTransport}, which calls the server through the typed client.
 *
 * A batch of raw frames of one layout (108 values each, or 128: ESP32 arrays
 * and CSI_DATA lines) goes as a binary batch, one signed byte a value
 * (`application/octet-stream`, `?layout=pi108|esp128`); any other batch (106
 * features, layouts mixed) as JSON. A server older than binary batches
 * answers 415: the batch is sent again at once as JSON, and so are the
 * following ones for {@link BINARY_RETRY_MS} before binary is tried again (a
 * server upgraded meanwhile takes it).
 */
import { createDoorsenseClient, type DoorsenseClient, type DoorsenseClientOptions } from '../client/index.js'
import { encodeBinaryFrames, type BinaryLayout } from '../domain/frames.js'

/** A frame the server could not read, by its position in the batch. */
export interface FrameRejection {
  index: number
  reason: string
}

/**
 * What became of one batch:
 * - `stored`: the server took it (2xx); `rejected` frames will never be accepted, the rest are stored (or classified);
 * - `retry`: the server did not take it (unreachable, 5xx, 429): send it again later;
 * - `refused`: a 4xx other than 413 (or a 2xx that is not a doorsense answer, status 0): the same batch would be refused again;
 * - `too-large`: 413: send it again in smaller batches.
 */
export type Delivery =
  | { kind: 'stored', accepted: number, rejected: FrameRejection[], results?: unknown[] }
  | { kind: 'retry', reason: string, retryAfterMs?: number }
  | { kind: 'refused', status: number, reason: string }
  | { kind: 'too-large', reason: string }

/** The two calls the agent makes. */
export interface AgentTransport {
  /** Tells the server this Pi is alive; rejects when that failed. */
  keepAlive (signal: AbortSignal): Promise<void>
  /**
   * Hands over a batch of frames (raw lines); never rejects: failures are a
   * `retry` or `refused` Delivery. `idempotencyKey` names the batch: the same
   * on every retry of it, so a batch the server stored but whose answer was
   * lost is not stored twice.
   */
  send (frames: string[], signal: AbortSignal, idempotencyKey?: string): Promise<Delivery>
}

/** Where and as whom the agent calls the server. */
export interface HttpTransportOptions {
  /** Base URL, e.g. http://192.168.1.10:20002. */
  server: string
  name: string
  id: number
  /** DEVICE_TOKEN (sent as a bearer token when set). */
  token?: string | undefined
  /** POST /ml/post/batch (classify) instead of /server/post/frames (store). */
  infer: boolean
  /** How long one call may take before it counts as failed, ms. */
  timeoutMs: number
  /** Send batches of raw frames as bytes when the server takes them (default true); false: always JSON. */
  binary?: boolean
  /** After a 415 to a binary batch, how long batches go as JSON before bytes are tried again, ms (default {@link BINARY_RETRY_MS}). */
  binaryRetryMs?: number
  /** Diagnostics, one line each (the switch to JSON against an older server). */
  log?: (message: string) => void
  /** A fetch of your own (tests count what is sent); defaults to the global fetch. */
  fetch?: DoorsenseClientOptions['fetch']
}

/** After a server refused a binary batch (415), how long batches go as JSON before binary is tried again, ms. */
export const BINARY_RETRY_MS = 60 * 60 * 1000

/** The request body of a batch: JSON, or bytes with their layout. */
type BatchBody = { kind: 'json', frames: string[] } | { kind: 'binary', layout: BinaryLayout, bytes: Uint8Array }

/** Calls the doorsense server over HTTP (global fetch) through the typed client. */
export class HttpTransport implements AgentTransport {
  private readonly client: DoorsenseClient
  private readonly options: HttpTransportOptions

  /** Until when (epoch ms) batches go as JSON: the server answered a binary batch with 415. */
  private jsonUntil = 0

  constructor (options: HttpTransportOptions) {
    this.options = options
    this.client = createDoorsenseClient(options.server, { token: options.token, ...(options.fetch ? { fetch: options.fetch } : {}) })
  }

  async keepAlive (signal: AbortSignal): Promise<void> {
    let answer
    try {
      answer = await this.client.POST('/server/post/keep_alive', {
        body: { NAME: this.options.name, ID: this.options.id },
        signal: this.callSignal(signal)
      })
    } catch (err) {
      throw new Error(describeNetworkError(err, this.options.timeoutMs))
    }
    const { error, response } = answer
    if (!response.ok) throw new Error(`keep-alive answered ${response.status}: ${messageOf(error)}`)
  }

  async send (frames: string[], signal: AbortSignal, idempotencyKey?: string): Promise<Delivery> {
    const binary = this.options.binary !== false && Date.now() >= this.jsonUntil ? encodeBinaryFrames(frames) : undefined
    if (binary !== undefined) {
      const delivery = await this.post({ kind: 'binary', ...binary }, signal, idempotencyKey)
      if (delivery.kind !== 'refused' || delivery.status !== 415) return delivery
      // a server older than binary batches: nothing was stored, the same batch goes as JSON now (same key)
      const retryMs = this.options.binaryRetryMs ?? BINARY_RETRY_MS
      this.jsonUntil = Date.now() + retryMs
      const again = retryMs >= 60_000 ? `${Math.round(retryMs / 60_000)} min` : `${Math.round(retryMs / 1000)} s`
      this.options.log?.(`the server does not take binary batches (${delivery.reason}): sending JSON, trying binary again in ${again}`)
    }
    return await this.post({ kind: 'json', frames }, signal, idempotencyKey)
  }

  /** Posts one batch to the route of the mode; never rejects. */
  private async post (batch: BatchBody, signal: AbortSignal, idempotencyKey?: string): Promise<Delivery> {
    const header = idempotencyKey === undefined ? {} : { 'Idempotency-Key': idempotencyKey }
    const url = this.options.infer ? '/ml/post/batch' : '/server/post/frames'
    // a binary body is the bytes as they are: the document's `format: binary` body reads as a string in the generated types
    const body = batch.kind === 'json'
      ? { params: { header }, body: { ID: this.options.id, frames: batch.frames } }
      : {
          params: { header, query: { ID: this.options.id, layout: batch.layout } },
          body: batch.bytes as unknown as string,
          bodySerializer: (bytes: unknown) => bytes,
          headers: { 'Content-Type': 'application/octet-stream' }
        }
    try {
      if (url === '/ml/post/batch') {
        const { data, error, response } = await this.client.POST(url, { ...body, signal: this.callSignal(signal) })
        if (!data) return failed(response, error)
        const rejected: FrameRejection[] = []
        data.results.forEach((result, index) => { if (result.error !== undefined) rejected.push({ index, reason: result.error }) })
        return { kind: 'stored', accepted: data.accepted, rejected, results: data.results }
      }
      const { data, error, response } = await this.client.POST(url, { ...body, signal: this.callSignal(signal) })
      if (!data) return failed(response, error)
      return { kind: 'stored', accepted: data.accepted, rejected: data.rejected }
    } catch (err) {
      // a 2xx whose body is not JSON: not a doorsense answer, and sending again could store twice
      if (err instanceof SyntaxError) {
        return { kind: 'refused', status: 0, reason: `the server answered with a body that is not JSON (${err.message}): is --server a doorsense server?` }
      }
      // no answer at all: refused connection, reset, timeout. The batch may have been stored (the
      // answer lost on the way): the retry carries the same Idempotency-Key, so it is not stored twice.
      return { kind: 'retry', reason: describeNetworkError(err, this.options.timeoutMs) }
    }
  }

  private callSignal (signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)])
  }
}

/** Classifies a non-2xx answer. */
function failed (response: Response, error: unknown): Delivery {
  const status = response.status
  const reason = `${status} ${messageOf(error)}`
  if (status === 413) return { kind: 'too-large', reason }
  // 5xx: the frames route stores a batch in one transaction, so a 5xx stored nothing; 429: not taken yet
  if (status >= 500 || status === 429) {
    const retryAfterS = Number(response.headers.get('retry-after'))
    return Number.isFinite(retryAfterS) && retryAfterS > 0
      ? { kind: 'retry', reason, retryAfterMs: retryAfterS * 1000 }
      : { kind: 'retry', reason }
  }
  return { kind: 'refused', status, reason }
}

/** The `message` of a doorsense error body, or whatever came back. */
function messageOf (error: unknown): string {
  if (error !== null && typeof error === 'object' && 'message' in error && typeof error.message === 'string') return error.message
  if (typeof error === 'string' && error !== '') return error.slice(0, 200)
  return 'no message'
}

/** "ECONNREFUSED", "no answer within 10000 ms", … from what fetch threw. */
export function describeNetworkError (err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string, message?: string } }
  if (error?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`
  if (error?.name === 'AbortError') return 'stopped'
  const cause = error?.cause
  if (cause?.code) return cause.code
  return cause?.message ?? error?.message ?? String(err)
}
