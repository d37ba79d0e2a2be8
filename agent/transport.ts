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
 *
 * Once an answer announces that the server decodes gzip bodies
 * (`Accept-Encoding`, RFC 7694: doorsense's answers to POSTs do), batches
 * go gzipped: 100 recorded Pi frames are 10,800 bytes as bytes and about
 * 6,000 gzipped, against 32,300 as JSON. Before that announcement (or after a
 * 415 to a compressed batch) they go plain, so an older server never sees a
 * coding it would misread.
 */
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
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
  /** gzip batches once the server announces it decodes them (default true); false: always plain. */
  compress?: boolean
  /** After a 415 to a binary (or gzipped) batch, how long batches go as JSON (or plain) before that is tried again, ms (default {@link BINARY_RETRY_MS}). */
  binaryRetryMs?: number
  /** Diagnostics, one line each (the switch to JSON against an older server). */
  log?: (message: string) => void
  /** A fetch of your own (tests count what is sent); defaults to the global fetch. */
  fetch?: DoorsenseClientOptions['fetch']
}

/** After a server refused a binary batch (415), how long batches go as JSON before binary is tried again, ms. */
export const BINARY_RETRY_MS = 60 * 60 * 1000

const gzipAsync = promisify(gzip)

/** Whether an answer's Accept-Encoding (RFC 7694) lists gzip. */
function announcesGzip (response: Response): boolean {
  return /(^|,)\s*gzip\s*(;|,|$)/i.test(response.headers.get('accept-encoding') ?? '')
}

/** The request body of a batch: JSON, or bytes with their layout. */
type BatchBody = { kind: 'json', frames: string[] } | { kind: 'binary', layout: BinaryLayout, bytes: Uint8Array }

/** Calls the doorsense server over HTTP (global fetch) through the typed client. */
export class HttpTransport implements AgentTransport {
  private readonly client: DoorsenseClient
  private readonly options: HttpTransportOptions

  /** Until when (epoch ms) batches go as JSON: the server answered a binary batch with 415. */
  private jsonUntil = 0
  /** Whether the server's last answer said it decodes gzip bodies. */
  private serverTakesGzip = false
  /** Until when (epoch ms) batches go plain whatever is announced: the server refused a gzipped batch (415). */
  private plainUntil = 0

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
    this.learnCodings(response)
    if (!response.ok) throw new Error(`keep-alive answered ${response.status}: ${messageOf(error)}`)
  }

  async send (frames: string[], signal: AbortSignal, idempotencyKey?: string): Promise<Delivery> {
    const delivery = await this.sendAs(frames, signal, idempotencyKey, this.compressing())
    if (delivery.kind !== 'refused' || delivery.status !== 415 || !this.compressing()) return delivery
    // something on the way announced gzip but does not decode it: the same batch plain, at once (same key)
    const retryMs = this.options.binaryRetryMs ?? BINARY_RETRY_MS
    this.plainUntil = Date.now() + retryMs
    this.options.log?.(`the server refused a gzipped batch (${delivery.reason}): sending batches plain for ${describeMs(retryMs)}`)
    return await this.sendAs(frames, signal, idempotencyKey, false)
  }

  private compressing (): boolean {
    return this.options.compress !== false && this.serverTakesGzip && Date.now() >= this.plainUntil
  }

  /** What a taken request's answer says of gzip (an error from a proxy on the way says nothing of the server). */
  private learnCodings (response: Response): void {
    if (response.ok) this.serverTakesGzip = announcesGzip(response)
  }

  private async sendAs (frames: string[], signal: AbortSignal, idempotencyKey: string | undefined, compress: boolean): Promise<Delivery> {
    const binary = this.options.binary !== false && Date.now() >= this.jsonUntil ? encodeBinaryFrames(frames) : undefined
    if (binary !== undefined) {
      const delivery = await this.post({ kind: 'binary', ...binary }, signal, idempotencyKey, compress)
      if (delivery.kind !== 'refused' || delivery.status !== 415 || compress) return delivery
      // a server older than binary batches: nothing was stored, the same batch goes as JSON now (same key)
      const retryMs = this.options.binaryRetryMs ?? BINARY_RETRY_MS
      this.jsonUntil = Date.now() + retryMs
      this.options.log?.(`the server does not take binary batches (${delivery.reason}): sending JSON, trying binary again in ${describeMs(retryMs)}`)
    }
    return await this.post({ kind: 'json', frames }, signal, idempotencyKey, compress)
  }

  /** Posts one batch to the route of the mode, gzipped when `compress`; never rejects. */
  private async post (batch: BatchBody, signal: AbortSignal, idempotencyKey: string | undefined, compress: boolean): Promise<Delivery> {
    const header = idempotencyKey === undefined ? {} : { 'Idempotency-Key': idempotencyKey }
    const url = this.options.infer ? '/ml/post/batch' : '/server/post/frames'
    const plain = batch.kind === 'json' ? Buffer.from(JSON.stringify({ ID: this.options.id, frames: batch.frames })) : batch.bytes
    const bytes = compress ? await gzipAsync(plain) : plain
    // the body goes as the bytes made here: the document's `format: binary` body reads as a string in the generated types
    const body = {
      params: batch.kind === 'json' ? { header } : { header, query: { ID: this.options.id, layout: batch.layout } },
      body: bytes as unknown as { ID: number, frames: string[] },
      bodySerializer: (sent: unknown) => sent,
      headers: {
        'Content-Type': batch.kind === 'json' ? 'application/json' : 'application/octet-stream',
        ...(compress ? { 'Content-Encoding': 'gzip' } : {})
      }
    }
    try {
      if (url === '/ml/post/batch') {
        const { data, error, response } = await this.client.POST(url, { ...body, signal: this.callSignal(signal) })
        this.learnCodings(response)
        if (!data) return failed(response, error)
        const rejected: FrameRejection[] = []
        data.results.forEach((result, index) => { if (result.error !== undefined) rejected.push({ index, reason: result.error }) })
        return { kind: 'stored', accepted: data.accepted, rejected, results: data.results }
      }
      const { data, error, response } = await this.client.POST(url, { ...body, signal: this.callSignal(signal) })
      this.learnCodings(response)
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

/** "60 min", "2 s". */
function describeMs (ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`
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
