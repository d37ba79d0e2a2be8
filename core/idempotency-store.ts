/**
 * The `Idempotency-Key` records (core/idempotency.ts is the Fastify plugin
 * over them): a key, its request's fingerprint and the answer, written in the
 * same transaction as the data the request wrote. {@link IdempotencyKeyStore}
 * is what the plugin and the routes use; {@link IdempotencyStore} keeps the
 * keys in the app's SQLite database. Another store (PostgreSQL) implements
 * the interface and is handed to the plugin in its place.
 */
import type { Database, Statement } from 'better-sqlite3'
import { ConflictError, IdempotencyKeyReusedError } from './errors.js'
import { IDEMPOTENCY_SCHEMA } from './idempotency-schema.js'
import type { Storage } from './storage.js'

/** The request header, as sent (Node lowercases it in `request.headers`). */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key'

/** One keyed request: which route and device, the client's key, and a hash of what it asked. */
export interface KeyedRequest {
  /** Route and device, e.g. `POST /server/post/frames device 7`. */
  scope: string
  key: string
  /** sha256 (hex) of the request body (and whatever else the answer depends on). */
  fingerprint: string
}

/**
 * A recorded answer: its status and its JSON body, as first sent; or, when
 * `derived`, the digest the route recorded to rebuild it from (a large answer
 * the route can compute again, e.g. a batch's classification).
 */
export interface StoredAnswer {
  status: number
  body: string
  derived: boolean
}

/** How an answer is recorded: its status and its body as the route sends it (the reply's serializer, so a replay is byte for byte the first answer). */
export interface AnswerFormat {
  status?: number
  serialize?: (body: unknown) => string
}

/** What {@link IdempotencyKeyStore.begin} found or did. */
export type Begun<P> =
  | { kind: 'replay', answer: StoredAnswer }
  /** A request with the same key is under way in this process: await, then begin again. */
  | { kind: 'wait', settled: Promise<void> }
  /** Claimed now: `write` ran and committed with the claim. */
  | { kind: 'started', resumed: false, partial: P }
  /** Claimed earlier, its writes committed, its answer never recorded (a crash, a failure after the write): do the rest again, write nothing. */
  | { kind: 'started', resumed: true, partial: P }

interface KeyRow {
  fingerprint: string
  created_at: number
  status: number | null
  answer: string | null
  partial: string | null
  derived: number
}

export interface IdempotencyStoreOptions {
  /** How long a key is remembered, ms. */
  windowMs: number
  /** Most bytes of recorded answers kept: past it the oldest answered keys go first, whatever their age (default: no bound). */
  maxBytes?: number
  /** Clock in epoch ms. */
  now?: () => number
}

/**
 * What the plugin and the routes need of a key store. `once` serves routes
 * that write and answer in one synchronous step; `begin` / `finish` /
 * `abandon` serve a route whose answer comes after an await; the rest is
 * pruning (by age, and by size) and the figures the plugin watches.
 */
export interface IdempotencyKeyStore {
  /** How long a key is remembered, ms. */
  readonly windowMs: number
  /** Most bytes of recorded answers kept. */
  readonly maxBytes: number
  /**
   * Runs `write` at most once per key, in one transaction with the key and
   * its answer; a repeat within the window gets the recorded answer.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  once<T> (request: KeyedRequest | undefined, write: () => T, format?: AnswerFormat): { replayed: false, body: T } | { replayed: true, answer: StoredAnswer }
  /** Starts a keyed request whose answer comes later (see {@link Begun}). */
  begin<P> (request: KeyedRequest, write: () => P): Begun<P>
  /** Records the answer of a request `begin` started (or, given `digest`, only that). */
  finish (request: KeyedRequest, body: unknown, format?: AnswerFormat, digest?: unknown): void
  /** Ends a request `begin` started without an answer. */
  abandon (request: KeyedRequest, nothingWritten: boolean): void
  /** Deletes up to `limit` keys older than the window. @returns how many */
  prune (limit?: number): number
  /** Deletes up to `limit` of the oldest answered keys while the answers take more than `maxBytes`. @returns how many */
  pruneOverSize (limit?: number): number
  /** Whether the recorded answers take more than `maxBytes`. */
  readonly overSize: boolean
  /** Bytes the recorded answers take. */
  readonly bytes: number
  /** Counts the recorded bytes again from the records. */
  recount (): void
  /** Keys recorded (expired ones included until pruned). */
  count (): number
}

/**
 * The key table in SQLite (`IDEMPOTENCY_SCHEMA`, idempotency-schema.ts).
 * `once` serves routes that write and answer in one synchronous step;
 * `begin` / `finish` / `abandon` serve a route whose answer comes after an
 * await (a batch classified by the model).
 */
export class IdempotencyStore implements IdempotencyKeyStore {
  readonly windowMs: number
  readonly maxBytes: number
  readonly #db: Database
  readonly #now: () => number
  /** Bytes of the recorded answers (this connection's count, read once at start). */
  #bytes = 0
  /** Keyed requests under way in this process, by scope and key. */
  readonly #inFlight = new Map<string, Promise<void>>()
  readonly #settle = new Map<string, () => void>()
  readonly #select: Statement<[string, string, number], KeyRow>
  readonly #claim: Statement<[string, string, string, number, string | null, number]>
  readonly #complete: Statement<[number, string, number, number, string, string]>
  readonly #release: Statement<[string, string]>
  readonly #prune: Statement<[number, number], { bytes: number }>
  readonly #pruneOldest: Statement<[number], { bytes: number }>
  readonly #count: Statement<[], { count: number }>

  constructor (db: Database, options: IdempotencyStoreOptions) {
    this.#db = db
    this.windowMs = options.windowMs
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    this.#now = options.now ?? Date.now
    this.recount()
    this.#select = db.prepare('SELECT fingerprint, created_at, status, answer, partial, derived FROM idempotency_keys ' +
      'WHERE scope = ? AND key = ? AND created_at > ?')
    // an expired row is taken over in place: one statement, so two claimants cannot both win
    this.#claim = db.prepare(`INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, partial) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = excluded.created_at,` +
      ` status = NULL, answer = NULL, bytes = 0, derived = 0, partial = excluded.partial
      WHERE idempotency_keys.created_at <= ?`)
    this.#complete = db.prepare('UPDATE idempotency_keys SET status = ?, answer = ?, bytes = ?, derived = ?, partial = NULL WHERE scope = ? AND key = ?')
    this.#release = db.prepare('DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND answer IS NULL')
    this.#prune = db.prepare('DELETE FROM idempotency_keys ' +
      'WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at <= ? ORDER BY created_at LIMIT ?) RETURNING bytes')
    // a request under way (no answer yet) is never cut short: its retry would write again
    this.#pruneOldest = db.prepare('DELETE FROM idempotency_keys ' +
      'WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE answer IS NOT NULL ORDER BY created_at LIMIT ?) RETURNING bytes')
    this.#count = db.prepare('SELECT COUNT(*) AS count FROM idempotency_keys')
  }

  /**
   * Runs `write` at most once per key: in one transaction with the key and
   * its answer (the value `write` returns, as `format` says). A repeat within the
   * window gets the recorded answer and writes nothing. Without a key it just
   * runs `write`. A `write` that throws records nothing: the same key may be
   * sent again.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  once<T> (
    request: KeyedRequest | undefined,
    write: () => T,
    format: AnswerFormat = {}
  ): { replayed: false, body: T } | { replayed: true, answer: StoredAnswer } {
    if (!request) return { replayed: false, body: write() }
    const found = this.#found(request)
    if (found) return { replayed: true, answer: found }
    return this.#db.transaction(() => {
      this.#claimOrThrow(request, null)
      const body = write()
      this.#record(request, format.status ?? 200, (format.serialize ?? JSON.stringify)(body), false)
      return { replayed: false as const, body }
    })()
  }

  /**
   * Starts a keyed request whose answer comes later: claims the key and runs
   * `write` in one transaction, storing what it returns (JSON) as the partial
   * result a resumed request gets back. Call {@link finish} with the answer or
   * {@link abandon} on failure.
   * @throws IdempotencyKeyReusedError (422) when the key came with another request
   */
  begin<P> (request: KeyedRequest, write: () => P): Begun<P> {
    const id = idOf(request)
    const inFlight = this.#inFlight.get(id)
    const row = this.#select.get(request.scope, request.key, this.#now() - this.windowMs)
    if (row) {
      this.#checkFingerprint(request, row)
      if (row.status !== null && row.answer !== null) return { kind: 'replay', answer: { status: row.status, body: row.answer, derived: row.derived === 1 } }
      if (inFlight) return { kind: 'wait', settled: inFlight }
      this.#track(id)
      return { kind: 'started', resumed: true, partial: JSON.parse(row.partial ?? 'null') as P }
    }
    if (inFlight) return { kind: 'wait', settled: inFlight }
    const partial = this.#db.transaction(() => {
      const value = write()
      this.#claimOrThrow(request, JSON.stringify(value ?? null))
      return value
    })()
    this.#track(id)
    return { kind: 'started', resumed: false, partial }
  }

  /**
   * Records the answer of a request {@link begin} started: `body` as `format`
   * serializes it, or, given `digest`, only that (JSON): a replay then gets
   * the digest (`derived`) and the route rebuilds the answer from it. What a
   * large answer can be computed again from needs no keeping verbatim.
   */
  finish (request: KeyedRequest, body: unknown, format: AnswerFormat = {}, digest?: unknown): void {
    try {
      if (digest !== undefined) this.#record(request, format.status ?? 200, JSON.stringify(digest), true)
      else this.#record(request, format.status ?? 200, (format.serialize ?? JSON.stringify)(body), false)
    } finally {
      this.#untrack(idOf(request))
    }
  }

  /**
   * Ends a request {@link begin} started without an answer. `nothingWritten`:
   * forget the key, so a retry starts afresh; otherwise a retry resumes
   * without writing again.
   */
  abandon (request: KeyedRequest, nothingWritten: boolean): void {
    try {
      if (nothingWritten) this.#release.run(request.scope, request.key)
    } finally {
      this.#untrack(idOf(request))
    }
  }

  /**
   * Deletes up to `limit` keys older than the window, oldest first.
   * @returns how many
   */
  prune (limit = 1000): number {
    return this.#forget(this.#prune.all(this.#now() - this.windowMs, limit))
  }

  /**
   * Deletes up to `limit` of the oldest answered keys while the recorded
   * answers take more than `maxBytes`, down to 90 % of it (room for the next ones).
   * @returns how many
   */
  pruneOverSize (limit = 1000): number {
    if (this.#bytes <= this.maxBytes) return 0
    let deleted = 0
    while (this.#bytes > 0.9 * this.maxBytes && deleted < limit) {
      // a few at a time: rows run from bytes to a megabyte, and only the excess goes
      const step = this.#forget(this.#pruneOldest.all(Math.min(10, limit - deleted)))
      if (step === 0) break
      deleted += step
    }
    return deleted
  }

  /** Whether the recorded answers take more than `maxBytes`. */
  get overSize (): boolean {
    return this.#bytes > this.maxBytes
  }

  /** Bytes the recorded answers take (as this process counted them). */
  get bytes (): number {
    return this.#bytes
  }

  /** Counts the recorded bytes again from the table (a key taken over after its window is not subtracted when it is). */
  recount (): void {
    this.#bytes = (this.#db.prepare('SELECT COALESCE(SUM(bytes), 0) AS bytes FROM idempotency_keys').get() as { bytes: number }).bytes
  }

  /** Keys recorded (expired ones included until pruned). */
  count (): number {
    return this.#count.get()?.count ?? 0
  }

  #record (request: KeyedRequest, status: number, answer: string, derived: boolean): void {
    // the row as a whole: the answer, and the key, scope and fingerprint beside it
    const bytes = Buffer.byteLength(answer) + request.scope.length + request.key.length + ROW_OVERHEAD_BYTES
    if (this.#complete.run(status, answer, bytes, derived ? 1 : 0, request.scope, request.key).changes === 1) this.#bytes += bytes
  }

  #forget (deleted: ReadonlyArray<{ bytes: number }>): number {
    for (const row of deleted) this.#bytes -= row.bytes
    if (this.#bytes < 0) this.#bytes = 0
    return deleted.length
  }

  /** The recorded answer for `request`, if any; throws on a fingerprint mismatch or a request still under way. */
  #found (request: KeyedRequest): StoredAnswer | undefined {
    const row = this.#select.get(request.scope, request.key, this.#now() - this.windowMs)
    if (!row) return undefined
    this.#checkFingerprint(request, row)
    if (row.status === null || row.answer === null) {
      throw new ConflictError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} belongs to a request still under way on ${request.scope}: ` +
        'wait for its answer, or send the request again shortly')
    }
    return { status: row.status, body: row.answer, derived: row.derived === 1 }
  }

  /** Claims the key inside the caller's transaction; another writer's live claim (another process) throws. */
  #claimOrThrow (request: KeyedRequest, partial: string | null): void {
    const now = this.#now()
    if (this.#claim.run(request.scope, request.key, request.fingerprint, now, partial, now - this.windowMs).changes === 1) return
    // claimed by another connection between our look and our write: its answer (or a 409) stands
    const row = this.#select.get(request.scope, request.key, now - this.windowMs)
    if (row) this.#checkFingerprint(request, row)
    throw new ConflictError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} was just taken by another request on ${request.scope}: ` +
      'send the request again to get its answer')
  }

  #checkFingerprint (request: KeyedRequest, row: KeyRow): void {
    if (row.fingerprint === request.fingerprint) return
    const ago = Math.max(0, Math.round((this.#now() - row.created_at) / 1000))
    throw new IdempotencyKeyReusedError(`${IDEMPOTENCY_KEY_HEADER} ${quoteKey(request.key)} was used ${ago} s ago ` +
      `for a different request on ${request.scope}: a key names one request, so send a new key with a new request`)
  }

  #track (id: string): void {
    let settle: () => void = () => {}
    this.#inFlight.set(id, new Promise<void>((resolve) => { settle = resolve }))
    this.#settle.set(id, settle)
  }

  #untrack (id: string): void {
    this.#settle.get(id)?.()
    this.#settle.delete(id)
    this.#inFlight.delete(id)
  }
}

/** A key row besides its answer, scope and key: the fingerprint (64 hex), the numbers, SQLite's own. */
const ROW_OVERHEAD_BYTES = 96

function idOf (request: KeyedRequest): string {
  return `${request.scope}\n${request.key}`
}

/** The key as an error message quotes it (it is visible ASCII once checked; cut to stay short). */
function quoteKey (key: string): string {
  return JSON.stringify(key.length > 48 ? `${key.slice(0, 48)}…` : key)
}

/** The SQLite key store over the app's database, its table migrated first ({@link IDEMPOTENCY_SCHEMA}). */
export function sqliteIdempotencyStore (storage: Pick<Storage, 'db' | 'migrate'>, options: IdempotencyStoreOptions): IdempotencyStore {
  storage.migrate(IDEMPOTENCY_SCHEMA)
  return new IdempotencyStore(storage.db, options)
}
